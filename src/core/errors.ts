/**
 * The one table of errors a kiln user can see. Every entry has a stable code (never reused),
 * the HTTP status a server answers with, a one-line summary for `docs/errors.md`, and a message
 * template that names the value, the rule and the fix.
 */

interface ErrorDef<P> {
  /** HTTP status used when the error reaches a client of `kiln serve`. */
  readonly status: number;
  /** When the error happens, one sentence; rendered into docs/errors.md. */
  readonly when: string;
  readonly message: (params: P) => string;
}

function def<P = Record<string, never>>(status: number, when: string, message: (params: P) => string): ErrorDef<P> {
  return { status, when, message };
}

const q = (value: unknown): string => JSON.stringify(value);

export const ERRORS = {
  // Command line
  KILN_ERR_CLI_UNKNOWN_COMMAND: def<{ command: string; known: readonly string[] }>(
    400,
    'The first argument is not a kiln command.',
    (p) => `unknown command ${q(p.command)}; commands are: ${p.known.join(', ')}. Run "kiln --help" for what each does`,
  ),
  KILN_ERR_CLI_UNKNOWN_FLAG: def<{ command: string; flag: string }>(
    400,
    'A flag that the command does not define.',
    (p) => `unknown flag ${q(p.flag)} for "kiln ${p.command}"; run "kiln ${p.command} --help" to list its flags`,
  ),
  KILN_ERR_CLI_MISSING_ARGUMENT: def<{ command: string; argument: string; usage: string }>(
    400,
    'A required positional argument is missing.',
    (p) => `"kiln ${p.command}" needs ${p.argument}; usage: ${p.usage}`,
  ),
  KILN_ERR_CLI_EXTRA_ARGUMENT: def<{ command: string; value: string; usage: string }>(
    400,
    'More positional arguments than the command takes.',
    (p) => `"kiln ${p.command}" does not take ${q(p.value)}; usage: ${p.usage}`,
  ),
  KILN_ERR_CLI_INVALID_FLAG: def<{ flag: string; rule: string; value: string }>(
    400,
    'A flag value fails its rule (range, type, choices).',
    (p) => `${p.flag} must be ${p.rule}, got ${q(p.value)}`,
  ),

  // Model sources
  KILN_ERR_SOURCE_NOT_FOUND: def<{ path: string }>(
    404,
    'The SOURCE or ARTIFACT path does not exist.',
    (p) =>
      `no model at ${q(p.path)}: the path does not exist; pass a Hugging Face-layout folder, a .onnx file or a .kiln artifact (the embedded model is models/sst2-distilbert-tiny)`,
  ),
  KILN_ERR_SOURCE_UNRECOGNIZED: def<{ path: string }>(
    400,
    'The path is neither a folder nor a .onnx file.',
    (p) =>
      `${q(p.path)} is not a model source: expected a folder (config.json, tokenizer.json, onnx/model.onnx) or a .onnx file`,
  ),
  KILN_ERR_SOURCE_MISSING_FILE: def<{ path: string; file: string; purpose: string }>(
    400,
    'A model folder lacks a file that compile needs (config, tokenizer or ONNX graph).',
    (p) =>
      `${q(p.path)} has no ${p.file}, which kiln needs for ${p.purpose}; add it to the folder (Hugging Face layout) or pass a complete folder`,
  ),
  KILN_ERR_SOURCE_NEEDS_FOLDER: def<{ path: string; missing: string }>(
    400,
    'A bare .onnx file was given, but a text model also needs its tokenizer and labels.',
    (p) =>
      `${q(p.path)} is a bare ONNX file, but no ${p.missing} was found beside it; put the .onnx in a Hugging Face-layout folder with config.json and tokenizer.json and compile the folder`,
  ),
  KILN_ERR_CONFIG_INVALID: def<{ path: string; problem: string }>(
    400,
    'config.json or a tokenizer file is not valid JSON or lacks a required field.',
    (p) => `${q(p.path)} is not usable: ${p.problem}`,
  ),

  // ONNX graphs
  KILN_ERR_ONNX_NOT_ONNX: def<{ path: string; reason: string }>(
    400,
    'The file is not an ONNX model (not protobuf, or no graph in it).',
    (p) =>
      `${q(p.path)} is not an ONNX model (${p.reason}); export the model to ONNX first (e.g. torch.onnx.export) and pass the .onnx file`,
  ),
  KILN_ERR_ONNX_TRUNCATED: def<{ path: string; bytes: number }>(
    400,
    'The ONNX file ends in the middle of a record: an interrupted download or copy.',
    (p) =>
      `${q(p.path)} is truncated: its protobuf data ends early after ${p.bytes} bytes; copy or export the file again`,
  ),
  KILN_ERR_ONNX_EXTERNAL_DATA: def<{ path: string; tensor: string }>(
    400,
    'The model keeps weights in external data files, which compile does not read yet.',
    (p) =>
      `${q(p.path)} stores tensor ${q(p.tensor)} in an external data file; re-export with weights inside the .onnx (models under 2 GiB)`,
  ),
  KILN_ERR_OP_UNSUPPORTED: def<{ backend: string; count: number; details: string }>(
    422,
    'The graph uses operators that the target runtime does not implement.',
    (p) =>
      `${p.count} operator type(s) are not supported by the ${p.backend} backend:\n${p.details}\n` +
      'fix: export the model with standard ONNX operators (a newer opset, or without custom ops), or replace these nodes',
  ),
  KILN_ERR_MODEL_INPUTS: def<{ path: string; found: string; problem: string }>(
    422,
    "The graph's inputs are not what the tokenizer produces.",
    (p) =>
      `${q(p.path)} takes inputs ${p.found}, but ${p.problem}; a text classifier must take input_ids and attention_mask (int64 or int32, [batch, sequence]) and may take token_type_ids`,
  ),
  KILN_ERR_MODEL_IMAGE_INPUTS: def<{ path: string; found: string; problem: string }>(
    422,
    "An image model's graph input is not one float [batch, 3, height, width] tensor, or its size is unknown.",
    (p) =>
      `${q(p.path)} takes inputs ${p.found}, but ${p.problem}; an image classifier must take one float input [batch, 3, height, width] (pass --image-size HxW when the graph leaves height and width open)`,
  ),
  KILN_ERR_MODEL_OUTPUTS: def<{ path: string; found: string; problem: string }>(
    422,
    "The graph's output is not class logits matching config.json's id2label.",
    (p) =>
      `${q(p.path)} has outputs ${p.found}, but ${p.problem}; the first output must be logits [batch, number of labels]`,
  ),
  KILN_ERR_TOKENIZER_MISMATCH: def<{ tokenizer: string; maxId: number; rows: number }>(
    422,
    "The tokenizer can produce token ids beyond the model's embedding table.",
    (p) =>
      `${q(p.tokenizer)} produces ids up to ${p.maxId}, but the model's embedding table has ${p.rows} rows (config.json vocab_size); use the tokenizer the model was trained with`,
  ),
  KILN_ERR_COMPILE_FAILED: def<{ path: string; step: string; reason: string }>(
    500,
    'ONNX Runtime rejected the graph while compiling it.',
    (p) => `compiling ${q(p.path)} failed while ${p.step}: ${p.reason}`,
  ),

  // Hugging Face checkpoints (safetensors) and the importer
  KILN_ERR_WEIGHTS_INVALID: def<{ path: string; problem: string }>(
    400,
    'A safetensors file has a malformed header or tensor offsets that overlap or run past the data.',
    (p) => `${q(p.path)} is not a valid safetensors file: ${p.problem}; re-save or re-download the checkpoint`,
  ),
  KILN_ERR_WEIGHTS_TRUNCATED: def<{ path: string; expected: number; actual: number }>(
    400,
    'A safetensors file is shorter than its header says: an interrupted download or copy.',
    (p) =>
      `${q(p.path)} is truncated: its header needs ${p.expected} bytes, the file has ${p.actual}; copy or download it again`,
  ),
  KILN_ERR_WEIGHTS_DTYPE: def<{ path: string; tensor: string; dtype: string; supported: string }>(
    400,
    'A tensor is stored in a number format kiln does not read.',
    (p) =>
      `tensor ${q(p.tensor)} in ${q(p.path)} has dtype ${q(p.dtype)}; kiln reads ${p.supported}; convert the checkpoint (e.g. save it in float32)`,
  ),
  KILN_ERR_WEIGHTS_MISSING_TENSOR: def<{ path: string; tensor: string; architecture: string }>(
    400,
    'A tensor the architecture needs is not in the checkpoint.',
    (p) =>
      `the ${p.architecture} checkpoint at ${q(p.path)} has no tensor ${q(p.tensor)}; check that config.json's architecture matches the weights`,
  ),
  KILN_ERR_WEIGHTS_SHAPE: def<{ path: string; tensor: string; expected: string; actual: string }>(
    400,
    'A tensor has a different shape than config.json implies.',
    (p) =>
      `tensor ${q(p.tensor)} in ${q(p.path)} has shape ${p.actual}, but config.json implies ${p.expected}; check that config.json belongs to these weights`,
  ),
  KILN_ERR_IMPORT_ARCHITECTURE: def<{ architecture: string; supported: string }>(
    422,
    'config.json names an architecture the importer cannot build.',
    (p) =>
      `kiln cannot import architecture ${q(p.architecture)}; supported: ${p.supported}. Export it to ONNX yourself and compile the .onnx instead`,
  ),
  KILN_ERR_SYNTH_UNKNOWN_PRESET: def<{ preset: string; known: string }>(
    400,
    '`kiln synth` was given a preset it does not know.',
    (p) => `unknown preset ${q(p.preset)}; presets are: ${p.known}`,
  ),
  KILN_ERR_CALIBRATION_INVALID: def<{ problem: string; fix: string }>(
    400,
    'Static int8 quantization was given calibration data that do not fit the model.',
    (p) => `static int8 quantization cannot calibrate: ${p.problem}; ${p.fix}`,
  ),

  // Verification after compile
  KILN_ERR_VERIFY_ACCURACY_DROP: def<{
    drop: string;
    reference: string;
    compiled: string;
    limit: string;
    flipped: number;
    fix: string;
  }>(
    422,
    'The compiled model lost more accuracy on the verify data than --max-accuracy-drop allows.',
    (p) =>
      `the compiled model's accuracy is ${p.compiled} % against ${p.reference} % for the fp32 source, a drop of ${p.drop} points (limit ${p.limit}; ${p.flipped} rows flipped); nothing was written. To proceed: ${p.fix}, or raise --max-accuracy-drop`,
  ),
  KILN_ERR_VERIFY_AGREEMENT: def<{ agreement: string; unit: string; limit: string; flipped: number; fix: string }>(
    422,
    'The compiled model agreed with the fp32 source on fewer rows (tokens, answers) than --min-agreement (classifiers: on rows without labels).',
    (p) =>
      `the compiled model agrees with the fp32 source on ${p.agreement} % of the ${p.unit} (limit ${p.limit} %; ${p.flipped} rows flipped); nothing was written. To proceed: ${p.fix}, or lower --min-agreement`,
  ),

  // Artifacts and cache
  KILN_ERR_ARTIFACT_INVALID: def<{ path: string; problem: string }>(
    400,
    'manifest.json is missing, unreadable, or from an unknown format version.',
    (p) => `${q(p.path)} is not a usable kiln artifact: ${p.problem}; compile the source again with "kiln compile"`,
  ),
  KILN_ERR_ARTIFACT_CORRUPT: def<{ path: string; file: string; problem: string }>(
    400,
    'A file of the artifact is missing or its SHA-256 differs from the manifest.',
    (p) =>
      `artifact ${q(p.path)} is corrupt: ${p.file} ${p.problem}; compile it again (kiln compile SOURCE --no-cache) or restore it from a good copy`,
  ),
  KILN_ERR_OUTPUT_EXISTS: def<{ path: string }>(
    409,
    'The output path exists and is not a kiln artifact, so kiln will not overwrite it.',
    (p) => `output ${q(p.path)} exists and is not a kiln artifact; choose another path with -o or remove it`,
  ),
  KILN_ERR_PACKAGE_INVALID: def<{ path: string; problem: string }>(
    400,
    'A .tar.gz given as ARTIFACT cannot be extracted (truncated, not gzip or tar) or holds no artifact at its root.',
    (p) =>
      `${q(p.path)} is not a usable kiln package: ${p.problem}; make it again with "kiln package ARTIFACT -o model.tar.gz"`,
  ),
  KILN_ERR_CACHE_IO: def<{ path: string; reason: string }>(
    500,
    'The compile cache folder cannot be written or read.',
    (p) =>
      `the compile cache at ${q(p.path)} is not usable (${p.reason}); set KILN_CACHE_DIR to a writable folder, or pass --no-cache`,
  ),

  // Inputs to a model
  KILN_ERR_INPUT_EMPTY_TEXT: def<{ where: string }>(
    400,
    'A text to classify is empty or only whitespace.',
    (p) => `${p.where} is empty or whitespace only; every text needs at least one visible character`,
  ),
  KILN_ERR_INPUT_PAIR_INCOMPLETE: def<{ where: string; problem: string }>(
    400,
    'A text pair is missing its second text.',
    (p) => `${p.where}: ${p.problem}; give each pair as two texts (text, then text_pair)`,
  ),
  KILN_ERR_INPUT_KIND: def<{ where: string; expected: string; got: string; task: string }>(
    400,
    "An input of the wrong kind for the model's task (an image for a text model, a text for an image model).",
    (p) =>
      `${p.where} is ${p.got}, but this model's task is ${p.task}, which takes ${p.expected}; send ${p.expected}, or use a model compiled for that kind of input`,
  ),
  KILN_ERR_INPUT_IMAGE: def<{ where: string; problem: string; formats: string; megapixels: number }>(
    400,
    'An image input cannot be decoded, is not JPEG, PNG or WebP, or is too large.',
    (p) =>
      `${p.where} is not a usable image: ${p.problem}; send ${p.formats} bytes of at most ${p.megapixels} megapixels`,
  ),
  KILN_ERR_INPUT_FILE_NOT_FOUND: def<{ path: string }>(
    404,
    'The file given with --file does not exist.',
    (p) => `--file ${q(p.path)} does not exist; pass a UTF-8 text file with one text per line`,
  ),
  KILN_ERR_INPUT_TOKENS: def<{ row: number; problem: string }>(
    400,
    'Token ids a client sent (KServe v2 INT64 tensors) do not fit the model.',
    (p) =>
      `row ${p.row} of the token ids is not usable: ${p.problem}; or send the texts and let the server tokenize them`,
  ),
  KILN_ERR_INPUT_NO_TEXTS: def(
    400,
    '`kiln run` was given neither texts nor --file.',
    () =>
      'no texts to classify; pass them as arguments (kiln run ARTIFACT "some text") or with --file F (one per line)',
  ),
  KILN_ERR_INPUT_TOO_LONG: def<{ where: string; tokens: number; limit: number }>(
    413,
    'A text or text pair has more tokens than the model reads, and truncation was turned off (truncate: false).',
    (p) =>
      `${p.where} has ${p.tokens} tokens with its special tokens, and the model reads at most ${p.limit}; set truncate: true (the default) to cut it, or shorten the text`,
  ),
  KILN_ERR_INPUT_UNKNOWN_PROMPT: def<{ name: string; model: string; known: string }>(
    400,
    "A request's prompt_name is not one of the prompts the model's config_sentence_transformers.json defines.",
    (p) =>
      `prompt_name ${JSON.stringify(p.name)} is not a prompt of ${JSON.stringify(p.model)}, which knows ${p.known}; send one of those, or omit prompt_name to encode the text as it is`,
  ),
  KILN_ERR_INPUT_ALREADY_NORMALIZED: def<{ model: string }>(
    400,
    'A request asked for vectors that are not normalized (normalize: false) from an artifact whose graph normalizes them.',
    (p) =>
      `normalize is false, but ${JSON.stringify(p.model)} was compiled with normalization inside its graph, so its raw vectors are not available; compile it again with --no-normalize (kiln compile SOURCE --task feature-extraction --no-normalize) to get raw vectors with normalize: false (the server still scales them to unit length when normalize is true or omitted), or omit normalize`,
  ),
  KILN_ERR_INPUT_PAIR_NO_ROOM: def<{ where: string; first: number; specials: number; limit: number }>(
    413,
    'A text pair cannot be cut to the max length by cutting only its second text (truncation only_second): the first text and the special tokens fill it.',
    (p) =>
      `${p.where} cannot be cut to ${p.limit} tokens by cutting only its second text: the first text has ${p.first} tokens and the pair adds ${p.specials} special tokens, which leaves no token of the second; use the truncation longest_first, or shorten the first text`,
  ),
  KILN_ERR_INPUT_CANDIDATE_LABELS: def<{ where: string; problem: string }>(
    400,
    "A zero-shot request's candidate labels are missing, empty, or not strings.",
    (p) =>
      `${p.where} is not usable: ${p.problem}; send "candidate_labels" as a list of non-empty strings (or one string of comma-separated labels)`,
  ),
  KILN_ERR_INPUT_TOO_MANY_LABELS: def<{ count: number; limit: number }>(
    413,
    'A zero-shot request carries more candidate labels than the server takes per request (--max-labels); each label is one model run.',
    (p) =>
      `the request has ${p.count} candidate labels; at most ${p.limit} are accepted per request (--max-labels ${p.limit}); split them over several requests, or start the server with a larger --max-labels`,
  ),
  KILN_ERR_INPUT_HYPOTHESIS_TEMPLATE: def<{ template: string }>(
    400,
    'A zero-shot hypothesis_template has no "{}" where the label goes.',
    (p) =>
      `hypothesis_template ${q(p.template)} has no "{}" for the candidate label; put {} where the label goes, e.g. "This example is {}." (the default)`,
  ),
  KILN_ERR_INPUT_QUESTION_TOO_LONG: def<{ where: string; tokens: number; specials: number; limit: number }>(
    413,
    "A question leaves no room for its context in the model's max length (the question and the special tokens fill it).",
    (p) =>
      `${p.where} has ${p.tokens} tokens, and with the ${p.specials} special tokens of a pair that leaves no token of the context in the model's ${p.limit}; shorten the question, or compile the model with a larger --max-length`,
  ),
  KILN_ERR_INPUT_ANSWER_OPTION: def<{ option: string; value: unknown; rule: string }>(
    400,
    'A question-answering option (top_k, max_answer_len, doc_stride) is out of its range.',
    (p) => `${p.option} is ${q(p.value)}; it must be ${p.rule}`,
  ),
  KILN_ERR_INPUT_PAIR_MAX_LENGTH: def<{ limit: number; specials: number }>(
    422,
    'A text pair had to be cut for a model whose max length leaves no room for a token of each text beside the special tokens of a pair.',
    (p) =>
      `this model reads at most ${p.limit} tokens, which leaves no room for a token of each text beside the ${p.specials} special tokens of a text pair; send single texts or shorter pairs, or compile the model again with --max-length ${p.specials + 2} or more`,
  ),

  KILN_ERR_INPUT_AGGREGATION: def<{ value: string; known: string }>(
    400,
    "A token-classification request's aggregation_strategy is not one kiln knows.",
    (p) =>
      `aggregation_strategy ${q(p.value)} is not one of ${p.known}; send "none" (one entry per token, the default), "simple" (adjacent tokens of one entity merged), or "first", "average" or "max" (whole words)`,
  ),
  KILN_ERR_INPUT_STRIDE: def<{ value: unknown; max: number; maxLength: number }>(
    400,
    "A token-classification request's stride (tokens shared by consecutive windows of a long text) is out of range.",
    (p) =>
      `stride ${q(p.value)} must be an integer in [0, ${p.max}]: windows of this model hold ${p.max + 1} text tokens (max length ${p.maxLength} less its special tokens) and each must move on by at least one; send a smaller stride, or omit it for the default`,
  ),

  // Data files (bench, verify, batch)
  KILN_ERR_DATA_INVALID: def<{ path: string; line: number; problem: string }>(
    400,
    'A line of a data file cannot be read (bad JSON, wrong number of columns, empty text).',
    (p) => `${q(p.path)} line ${p.line}: ${p.problem}`,
  ),
  KILN_ERR_DATA_NO_TEXT_COLUMN: def<{ path: string; columns: string }>(
    400,
    'A TSV/CSV data file has no column named sentence or text.',
    (p) =>
      `${q(p.path)} has columns ${p.columns}, none of them "sentence" or "text"; name the text column so in the header row`,
  ),
  KILN_ERR_DATA_EMPTY: def<{ path: string }>(
    400,
    'A data file holds no texts.',
    (p) =>
      `${q(p.path)} holds no texts; give it a header row and at least one row (TSV/CSV), or one JSON object per line (JSONL)`,
  ),

  KILN_ERR_BATCH_OUTPUT_INVALID: def<{ path: string; problem: string }>(
    400,
    'The output of an earlier `kiln batch` run, which a rerun would continue, is not one it wrote.',
    (p) => `cannot continue ${q(p.path)}: ${p.problem}; pass another -o, or --restart to overwrite it`,
  ),

  // Runtime
  KILN_ERR_RUNTIME_LOAD: def<{ path: string; reason: string }>(
    500,
    'ONNX Runtime could not load the model of an artifact.',
    (p) =>
      `ONNX Runtime could not load ${q(p.path)}: ${p.reason}; recompile it with this kiln and ONNX Runtime (kiln compile SOURCE --no-cache)`,
  ),
  KILN_ERR_RUNTIME_RUN: def<{ reason: string }>(
    500,
    'An inference failed inside ONNX Runtime.',
    (p) => `inference failed in ONNX Runtime: ${p.reason}`,
  ),

  // Devices (--device: cpu, webgpu, cuda, auto)
  KILN_ERR_DEVICE_WEBGPU_UNAVAILABLE: def<{ reason: string }>(
    503,
    'The WebGPU device finds no GPU adapter (no Vulkan driver that Dawn accepts); kiln does not fall back to the CPU.',
    (p) =>
      `--device webgpu found no usable GPU adapter (${p.reason}); install your GPU's Vulkan driver (on Debian: mesa-vulkan-drivers from bookworm-backports, Mesa 25 or later, plus libvulkan1; its lavapipe driver is a software GPU) and check that VK_ICD_FILENAMES / VK_DRIVER_FILES, when set, name an existing driver file, or pass --device cpu`,
  ),
  KILN_ERR_DEVICE_CUDA_UNAVAILABLE: def<{ reason: string; install: string; requirements: string }>(
    503,
    "The CUDA device cannot start: onnxruntime-node's CUDA provider libraries, CUDA/cuDNN or the NVIDIA driver are missing; kiln does not fall back to the CPU.",
    (p) =>
      `--device cuda cannot start (${p.reason}); install ONNX Runtime's CUDA provider with "${p.install}" (package.json's allowScripts keeps npm ci from downloading it) and make sure the machine has ${p.requirements} on its library path, or pass --device webgpu or cpu`,
  ),
  KILN_ERR_DEVICE_MISMATCH: def<{ path: string; compiled: string; requested: string; fix: string }>(
    400,
    'An artifact is run on a device its graph was not compiled for.',
    (p) => `${q(p.path)} was compiled for --device ${p.compiled} and cannot run on ${p.requested}: ${p.fix}`,
  ),
  KILN_ERR_DEVICE_PRECISION: def<{ device: string; precision: string; rule: string }>(
    400,
    'A precision the chosen device does not run well: int8 on a GPU, fp16 on the CPU.',
    (p) => `--precision ${p.precision} is not for --device ${p.device}: ${p.rule}`,
  ),
  KILN_ERR_DEVICE_REPLICAS: def<{ device: string; replicas: number }>(
    400,
    'More than one replica asked for on a GPU device.',
    (p) =>
      `--replicas ${p.replicas} on --device ${p.device}: a GPU runs one session (replicas would share the same device and its memory, not add compute); use --replicas 1 and a larger --max-batch, or --device cpu for replicas on cores`,
  ),
  KILN_ERR_DEVICE_MEMORY: def<{ model: string; device: string; needed: string; available: string; fix: string }>(
    507,
    "A CUDA session's estimated memory (weights, activations at the largest batch, the CUDA runtime) exceeds the GPU's free memory as nvidia-smi reports it.",
    (p) =>
      `${p.model} on --device ${p.device} needs about ${p.needed}, but the GPU has ${p.available} and a session may plan to fill 90 % of it; ${p.fix}`,
  ),

  KILN_ERR_MEMORY_INSUFFICIENT: def<{
    model: string;
    replicas: number;
    perReplica: string;
    needed: string;
    available: string;
    fix: string;
  }>(
    507,
    'The requested replicas would need more memory than the machine has available.',
    (p) =>
      `${p.replicas} replicas of ${p.model} need about ${p.needed} (${p.perReplica} each, measured at compile), but only ${p.available} is available; ${p.fix}`,
  ),

  KILN_ERR_TUNE_NO_LAYOUT: def<{ target: number; best: string; trials: number }>(
    422,
    '`kiln tune` found no layout whose p99 meets the target.',
    (p) =>
      `no layout met p99 ≤ ${p.target} ms in ${p.trials} trials (the lowest p99 was ${p.best} ms); raise --p99-ms, compile with --precision int8 or a smaller --max-length, or use a faster machine`,
  ),

  KILN_ERR_BENCH_NO_INPUTS: def(
    400,
    '`bench` (the library function) was given an empty list of inputs.',
    () =>
      'bench was given no inputs; pass at least one text (or, for an image model, the bytes of one image) in `inputs`',
  ),

  KILN_ERR_MONITOR_UNREACHABLE: def<{ url: string; reason: string }>(
    502,
    "`kiln top` or `kiln monitor` cannot read the server's /stats.",
    (p) =>
      `cannot read ${p.url}: ${p.reason}; check that kiln serve runs there (--url) and, if it has an API key, pass --api-key`,
  ),

  // Scheduler
  KILN_ERR_QUEUE_FULL: def<{ depth: number; maxQueue: number }>(
    429,
    'The request queue is full: the server is overloaded and refuses work instead of slowing everyone down.',
    (p) =>
      `the server is overloaded: ${p.depth} requests are queued (the limit is ${p.maxQueue}); retry after a short pause, or raise --max-queue or add replicas`,
  ),
  KILN_ERR_QUEUE_WAIT: def<{ waitMs: number; limitMs: number; depth: number }>(
    429,
    'A request would wait longer than --max-queue-ms before its batch starts: the server is overloaded and refuses fast.',
    (p) =>
      `the server is overloaded: a request now would wait about ${p.waitMs} ms before its batch starts (the running batches, then ${p.depth} queued requests; the limit is ${p.limitMs} ms); retry after a short pause, or add replicas`,
  ),
  KILN_ERR_DEADLINE_EXCEEDED: def<{ waitedMs: number }>(
    504,
    'A request waited in the queue past its deadline (--timeout-ms) and was dropped before it ran.',
    (p) =>
      `the request waited ${p.waitedMs} ms in the queue, past its deadline, and was dropped unrun; retry, raise --timeout-ms, or add replicas`,
  ),
  KILN_ERR_SCHEDULER_CLOSED: def<{ reason: string }>(
    503,
    'The model is shutting down and takes no new work.',
    (p) => `the model is not accepting work: ${p.reason}`,
  ),
  KILN_ERR_REPLICA_FAILED: def<{ replica: number; attempts: number; reason: string }>(
    500,
    'A replica crashed or exited while running a batch, on every attempt (an error ONNX Runtime reports keeps its own code).',
    (p) => `inference failed on replica ${p.replica} after ${p.attempts} attempt(s): ${p.reason}`,
  ),

  // HTTP server
  KILN_ERR_HTTP_BAD_JSON: def<{ reason: string }>(
    400,
    'The request body is not valid JSON.',
    (p) => `the request body is not valid JSON (${p.reason}); send a JSON object such as {"text": "I loved it"}`,
  ),
  KILN_ERR_HTTP_INVALID_BODY: def<{ problem: string; expected?: string }>(
    400,
    'The JSON body does not follow the route schema (missing field, wrong type, extra field).',
    (p) => `invalid request body: ${p.problem}; send ${p.expected ?? '{"text": "…"} or {"texts": ["…", …]}'}`,
  ),
  KILN_ERR_HTTP_MEDIA_TYPE: def<{ contentType: string }>(
    415,
    'The request has a content type the route does not accept.',
    (p) => `content type ${q(p.contentType)} is not accepted; send application/json`,
  ),
  KILN_ERR_HTTP_BODY_TOO_LARGE: def<{ limit: number }>(
    413,
    'The request body is larger than the server accepts.',
    (p) => `the request body is larger than ${p.limit} bytes; send fewer or shorter texts per request`,
  ),
  KILN_ERR_HTTP_TOO_MANY_TEXTS: def<{ count: number; limit: number }>(
    413,
    'A request carries more inputs (texts or images) than one request may hold.',
    (p) =>
      `the request has ${p.count} inputs (texts or images); at most ${p.limit} are accepted per request, split it into several requests (or use kiln batch)`,
  ),
  KILN_ERR_HTTP_CLIENT_BATCH: def<{ count: number; limit: number }>(
    413,
    'A rerank request carries more texts than the server takes per request (--max-client-batch).',
    (p) =>
      `the request has ${p.count} texts to rank; at most ${p.limit} are accepted per request (--max-client-batch ${p.limit}); split them over several requests, or start the server with a larger --max-client-batch`,
  ),
  KILN_ERR_HTTP_NOT_FOUND: def<{ method: string; url: string; routes: string }>(
    404,
    'No route matches the method and path.',
    (p) => `no route ${p.method} ${p.url}; routes are ${p.routes}`,
  ),
  KILN_ERR_HTTP_NOT_READY: def(
    503,
    'The server is up but the model is still loading.',
    () => 'the model is still loading; retry when GET /ping answers 200',
  ),
  KILN_ERR_HTTP_UNAUTHORIZED: def(
    401,
    'An API key is set and the request did not carry it.',
    () => 'missing or wrong API key; send the header "authorization: Bearer <key>" (or "x-api-key: <key>")',
  ),
  KILN_ERR_HTTP_PORT_IN_USE: def<{ host: string; port: number }>(
    500,
    'The port that kiln serve should listen on is taken.',
    (p) =>
      `port ${p.port} on ${p.host} is already in use; stop the other server or pass --port (or PORT) with a free port`,
  ),
  KILN_ERR_HTTP_TEXT_TOO_LONG: def<{ where: string; length: number; limit: number }>(
    413,
    'A text is longer than the server accepts (characters per text).',
    (p) =>
      `${p.where} has ${p.length} characters; at most ${p.limit} are accepted per text (the model reads only its first tokens anyway); shorten or split the text, or start the server with a larger --max-text-chars`,
  ),
  KILN_ERR_HTTP_TIMEOUT: def<{ limit: number }>(
    504,
    'A request was not answered within the deadline set by --timeout-ms.',
    (p) =>
      `the request was not answered within ${p.limit} ms (--timeout-ms) and was abandoned; retry later or with fewer texts, add replicas, or start the server with a larger --timeout-ms`,
  ),
  KILN_ERR_HTTP_DRAINING: def<{ signal: string }>(
    503,
    'The server received a stop signal: it finishes the work it accepted and takes no new requests.',
    (p) =>
      `the server is shutting down (${p.signal}) and takes no new requests; send the request to another instance, or retry once this one has restarted`,
  ),
  KILN_ERR_HTTP_INVOCATIONS_BODY: def<{ problem: string; expected?: string }>(
    400,
    'A SageMaker POST /invocations body is not what the model\'s task reads: {"inputs": …} (JSON) or one input per line (JSON Lines); a ranker\'s {"query", "texts"}.',
    (p) =>
      `invalid /invocations body: ${p.problem}; send ${
        p.expected === undefined
          ? '{"inputs": "…"} or {"inputs": ["…", …]} as application/json, or one {"inputs": "…"} (or a JSON string) per line as application/jsonlines'
          : `${p.expected} as application/json, or one such object per line as application/jsonlines`
      }`,
  ),
  KILN_ERR_HTTP_BAD_JSON_LINE: def<{ line: number; problem: string; expected?: string }>(
    400,
    "A line of an application/jsonlines body is not JSON, or not an input the model's task reads.",
    (p) =>
      `line ${p.line} of the application/jsonlines body ${p.problem}; send one JSON value per line: ${p.expected ?? '{"inputs": "…"} or a JSON string'}`,
  ),
  KILN_ERR_HTTP_V2_INVALID_REQUEST: def<{ problem: string }>(
    400,
    "A KServe v2 inference request does not follow the protocol or the model's inputs and outputs.",
    (p) =>
      `invalid inference request: ${p.problem}; send {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [n], "data": ["…", …]}]} (GET /v2/models/{name} lists the inputs and outputs)`,
  ),
  KILN_ERR_HTTP_V2_UNKNOWN_MODEL: def<{ model: string; served: string }>(
    404,
    'A KServe v2 route names a model (or version) that this server does not serve.',
    (p) =>
      `no model ${q(p.model)} on this server; it serves ${q(p.served)}: use /v2/models/${p.served} (or /v2/models/${p.served}/versions/1)`,
  ),
  KILN_ERR_HTTP_WRONG_TASK: def<{ model: string; task: string; route: string; serves: string; use: string }>(
    400,
    "A route that serves other tasks than the model's (e.g. /v1/embeddings for a classifier).",
    (p) => `${p.route} serves ${p.serves} models, but ${q(p.model)} is a ${p.task} model; send it to ${p.use}`,
  ),
  KILN_ERR_HTTP_UNKNOWN_MODEL: def<{ model: string; served: string }>(
    404,
    'A request names a model the server does not serve.',
    (p) => `no model named ${q(p.model)} is served here; models: ${p.served}`,
  ),
  KILN_ERR_HTTP_MODEL_REQUIRED: def<{ served: string }>(
    400,
    'The server serves several models (a model repository) and the request does not say which.',
    (p) =>
      `this server serves several models (${p.served}); name one with "model" in the body (or the x-amzn-sagemaker-target-model header on /invocations)`,
  ),
  KILN_ERR_INTERNAL: def<{ reason: string }>(
    500,
    'An unexpected failure; the server keeps running. Please report it.',
    (p) => `internal error: ${p.reason}; run with KILN_DEBUG=1 for a stack trace and report it`,
  ),

  // Deploy
  KILN_ERR_DEPLOY_KUBERNETES_FLAGS: def<{ problem: string; fix: string }>(
    400,
    'kiln deploy k8s flags that do not fit together (--job without --shards or --input, --job with --kserve, --min above --max, --hf-token-secret or --hf-cache-pvc with a local artifact).',
    (p) => `kiln deploy k8s: ${p.problem}; ${p.fix}`,
  ),
  KILN_ERR_DEPLOY_SAGEMAKER_FLAGS: def<{ problem: string; fix: string }>(
    400,
    'kiln deploy sagemaker flags that are missing or do not fit together (--image, --role or --bucket missing; --min, --initial-count, --max out of order).',
    (p) => `kiln deploy sagemaker: ${p.problem}; ${p.fix}`,
  ),
  KILN_ERR_DEPLOY_SAGEMAKER_UNTUNED: def<{ path: string }>(
    422,
    'kiln deploy sagemaker has no --target-invocations and the artifact has no tuned layout to compute it from.',
    (p) =>
      `${q(p.path)} has no tuned layout, so kiln cannot compute the autoscaling target (tuned requests/s × 0.5 × 60 invocations per instance per minute); run "kiln tune ${p.path}" first, or pass --target-invocations N`,
  ),
  KILN_ERR_AWS_CREDENTIALS: def<{ call: string; reason: string }>(
    401,
    'The AWS SDK found no credentials, or AWS rejected them as unknown or expired.',
    (p) =>
      `${p.call} was not sent: AWS credentials are missing or not valid (${p.reason}); set AWS_PROFILE to a profile of ~/.aws/config (after "aws sso login" for SSO), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary ones), then check with "aws sts get-caller-identity"`,
  ),
  KILN_ERR_AWS_REGION: def<{ call: string; reason: string }>(
    400,
    'No AWS region is configured for the deploy.',
    (p) =>
      `${p.call} was not sent: no AWS region (${p.reason}); pass --region (e.g. --region us-east-1), or set AWS_REGION, or region in the profile of ~/.aws/config`,
  ),
  KILN_ERR_AWS_ACCESS_DENIED: def<{ call: string; awsError: string; awsMessage: string; permission: string }>(
    403,
    'AWS refused a call of the deploy: the identity running kiln lacks a permission.',
    (p) =>
      `AWS denied ${p.call}: ${p.awsError}: ${p.awsMessage}; allow ${p.permission} in an IAM policy of the identity running kiln ("aws sts get-caller-identity" names it), then deploy again`,
  ),
  KILN_ERR_AWS_REQUEST: def<{ call: string; awsError: string; awsMessage: string }>(
    502,
    "An AWS call of the deploy failed for another reason; the message is AWS's own.",
    (p) =>
      `${p.call} failed: ${p.awsError}: ${p.awsMessage}; fix what AWS names (kiln deploy sagemaker --dry-run prints the input of every call) and deploy again`,
  ),
  KILN_ERR_SAGEMAKER_ENDPOINT_FAILED: def<{ endpoint: string; status: string; reason: string; logGroup: string }>(
    502,
    'The SageMaker endpoint did not reach InService: it failed, or its update was rolled back.',
    (p) =>
      `SageMaker endpoint ${q(p.endpoint)} did not come into service with the new model (status ${p.status}): ${p.reason}; read the container's log in CloudWatch (log group ${p.logGroup}), fix the image, role or instance type, and deploy again`,
  ),
  KILN_ERR_SAGEMAKER_WAIT_TIMEOUT: def<{ endpoint: string; status: string; minutes: number }>(
    504,
    'The SageMaker endpoint was still not InService when kiln stopped waiting.',
    (p) =>
      `SageMaker endpoint ${q(p.endpoint)} is still ${p.status} after ${p.minutes} minutes, and kiln stopped waiting (the deploy goes on in AWS; autoscaling was not set); watch it with "aws sagemaker describe-endpoint --endpoint-name ${p.endpoint}", and once InService run the same kiln deploy sagemaker again`,
  ),

  // Hugging Face Hub (models by name: hf:ORG/NAME[@REVISION])
  KILN_ERR_HUB_INVALID_ID: def<{ source: string; problem: string }>(
    400,
    'A hf: SOURCE is not a valid Hub model id or revision.',
    (p) =>
      `${q(p.source)} is not a Hub model: ${p.problem}; write hf:ORG/NAME, hf:ORG/NAME@REVISION (a branch, tag or commit sha) or hf:NAME`,
  ),
  KILN_ERR_HUB_REPO_NOT_FOUND: def<{ repo: string; endpoint: string; hint: string }>(
    404,
    'The Hub answered that the model repository does not exist (or is private and no token was sent).',
    (p) =>
      `model ${q(p.repo)} was not found on ${p.endpoint}${p.hint}; check the id (it is ORG/NAME as on the model page), or, if it is private or gated, set HF_TOKEN to a token with read access`,
  ),
  KILN_ERR_HUB_REVISION_NOT_FOUND: def<{ repo: string; revision: string; endpoint: string }>(
    404,
    'The model exists but the branch, tag or commit after @ does not.',
    (p) =>
      `model ${q(p.repo)} on ${p.endpoint} has no revision ${q(p.revision)}; pass an existing branch, tag or full 40-character commit sha after @ (or leave it out for main)`,
  ),
  KILN_ERR_HUB_UNAUTHORIZED: def<{ repo: string; endpoint: string; status: number; reason: string }>(
    401,
    'The model is gated or private and no valid token was sent (HTTP 401/403).',
    (p) =>
      `${p.endpoint} refused access to model ${q(p.repo)} (HTTP ${p.status}: ${p.reason}); set HF_TOKEN (or HUGGING_FACE_HUB_TOKEN, or pass --token) to a read token of an account that has access, and for a gated model accept its conditions on the model page first`,
  ),
  KILN_ERR_HUB_FILE_MISSING: def<{ repo: string; commit: string; file: string; purpose: string }>(
    404,
    'A file the model needs is not in the repository at that revision.',
    (p) =>
      `model ${q(p.repo)} at commit ${p.commit} has no ${q(p.file)} (${p.purpose}); pick a revision that has it, or download the folder yourself, add the file and compile the folder`,
  ),
  KILN_ERR_HUB_UNREACHABLE: def<{ endpoint: string; reason: string; cached: string }>(
    503,
    'The Hub (HF_ENDPOINT) cannot be reached and the model is not in the local cache.',
    (p) =>
      `cannot reach the Hub at ${p.endpoint} (${p.reason}); ${p.cached}. Check the network or HF_ENDPOINT, or set HF_HUB_OFFLINE=1 to use only what is cached`,
  ),
  KILN_ERR_HUB_NOT_CACHED: def<{ repo: string; revision: string; cache: string; cached: string }>(
    404,
    'Offline (HF_HUB_OFFLINE=1 or --offline) and the model is not in the local cache.',
    (p) =>
      `offline mode is on (HF_HUB_OFFLINE or --offline) and ${q(`${p.repo}@${p.revision}`)} is not in the Hub cache at ${p.cache} (${p.cached}); pull it once online (kiln pull hf:${p.repo}@${p.revision}), or point HF_HUB_CACHE at a cache that has it`,
  ),
  KILN_ERR_HUB_CHECKSUM: def<{ repo: string; file: string; expected: string; actual: string }>(
    502,
    "A downloaded file does not match the SHA-256 the Hub's listing gives for it; it was discarded.",
    (p) =>
      `${q(p.file)} of model ${q(p.repo)} has SHA-256 ${p.actual}, but the Hub lists ${p.expected}; the download was discarded and nothing was added to the cache. Retry; if it persists the mirror (HF_ENDPOINT) or a proxy is serving altered files`,
  ),
  KILN_ERR_HUB_NO_WEIGHTS: def<{ repo: string; commit: string; found: string; fix: string }>(
    400,
    'The repository has no weights kiln can use (ONNX or safetensors).',
    (p) => `model ${q(p.repo)} at commit ${p.commit} has no weights kiln can load (found: ${p.found}); ${p.fix}`,
  ),
  KILN_ERR_HUB_DOWNLOAD: def<{ repo: string; file: string; reason: string }>(
    502,
    'A file download failed again after retries (connection cut, wrong size).',
    (p) =>
      `downloading ${q(p.file)} of model ${q(p.repo)} failed: ${p.reason}; run the command again (it resumes from what was received), or check the network or HF_ENDPOINT`,
  ),
  KILN_ERR_HUB_BAD_RESPONSE: def<{ url: string; problem: string }>(
    502,
    'The Hub answered something kiln does not accept (an unsafe file path, a malformed listing).',
    (p) =>
      `the Hub's answer to ${p.url} was refused: ${p.problem}; check that HF_ENDPOINT points at a Hugging Face Hub or a faithful mirror`,
  ),
  KILN_ERR_HUB_LOCKED: def<{ lock: string; seconds: number }>(
    503,
    'Another process kept the model locked longer than kiln waits.',
    (p) =>
      `another process has been downloading this model for ${p.seconds} s (lock ${q(p.lock)}); wait for it and retry, or, if no kiln is running, delete the lock file`,
  ),
  KILN_ERR_HUB_CACHE_IO: def<{ path: string; reason: string }>(
    500,
    'The Hub cache folder cannot be written.',
    (p) =>
      `the Hub cache at ${q(p.path)} is not writable (${p.reason}); set HF_HUB_CACHE (or HF_HOME) to a writable folder`,
  ),
} as const;

export type ErrorCode = keyof typeof ERRORS;
export type ErrorParams<C extends ErrorCode> = Parameters<(typeof ERRORS)[C]['message']>[0];

/** An error a user can act on: a stable code, an HTTP status, and a message naming the fix. */
export class KilnError<C extends ErrorCode = ErrorCode> extends Error {
  readonly code: C;
  readonly status: number;
  readonly params: ErrorParams<C>;

  constructor(code: C, params: ErrorParams<C>, options?: { cause?: unknown }) {
    const entry = ERRORS[code] as ErrorDef<ErrorParams<C>>;
    // Overload refusals (429) are made thousands of times a second and their stack says nothing
    // their code does not: skip capturing it (several times cheaper to build), unless KILN_DEBUG asks.
    const limit = Error.stackTraceLimit;
    if (entry.status === 429 && !process.env.KILN_DEBUG) Error.stackTraceLimit = 0;
    try {
      super(entry.message(params), options);
    } finally {
      Error.stackTraceLimit = limit;
    }
    this.name = 'KilnError';
    this.code = code;
    this.status = entry.status;
    this.params = params;
  }

  /** The body every kiln HTTP error has. */
  toJSON(): { error: { code: C; message: string } } {
    return { error: { code: this.code, message: this.message } };
  }
}

export function isKilnError(err: unknown): err is KilnError {
  return err instanceof KilnError;
}

/** Any thrown value as a KilnError: kiln's own pass through, anything else is internal. */
export function toKilnError(err: unknown): KilnError {
  if (err instanceof KilnError) return err;
  const reason = err instanceof Error ? err.message : String(err);
  return new KilnError('KILN_ERR_INTERNAL', { reason }, { cause: err });
}
