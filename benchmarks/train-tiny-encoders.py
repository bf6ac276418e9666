"""Trains a tiny DeBERTa-v3-style or ModernBERT sequence classifier on SST-2 from scratch (float32,
one CPU thread), with the modules of test/fixtures/pytorch/encoders.py (Hugging Face parameter
names), and saves it as a Hugging Face folder: config.json + model.safetensors. The token ids come
from train-tiny-encoders.mjs (the embedded model's WordPiece tokenizer, through kiln).

    /usr/bin/python3 train-tiny-encoders.py IDS_JSON FAMILY OUT_DIR [EPOCHS]

Prints one JSON line: the dev accuracy PyTorch measures, steps, seconds.
"""
import json
import math
import os
import random
import sys
import time

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "test", "fixtures", "pytorch"))
import encoders  # noqa: E402
import safetensors_io  # noqa: E402

COMMON = {
    "vocab_size": 30522,
    "hidden_size": 64,
    "num_attention_heads": 4,
    "max_position_embeddings": 128,
    "pad_token_id": 0,
    "id2label": {"0": "NEGATIVE", "1": "POSITIVE"},
    "label2id": {"NEGATIVE": 0, "POSITIVE": 1},
}

CONFIGS = {
    # DeBERTa-v3's attention: log buckets (16: exact within ±8), shared key, c2p + p2c, no absolute positions.
    "deberta-v3": {
        **COMMON,
        "architectures": ["DebertaV2ForSequenceClassification"],
        "model_type": "deberta-v2",
        "num_hidden_layers": 2,
        "intermediate_size": 128,
        "hidden_act": "gelu",
        "relative_attention": True,
        "position_buckets": 16,
        "max_relative_positions": -1,
        "share_att_key": True,
        "pos_att_type": "p2c|c2p",
        "norm_rel_ebd": "layer_norm",
        "position_biased_input": False,
        "type_vocab_size": 0,
        "layer_norm_eps": 1e-7,
        "pooler_hidden_act": "gelu",
    },
    # ModernBERT: global attention in layer 0, sliding windows of ±8 tokens in layers 1 and 2.
    "modernbert": {
        **COMMON,
        "architectures": ["ModernBertForSequenceClassification"],
        "model_type": "modernbert",
        "num_hidden_layers": 3,
        "intermediate_size": 96,
        "hidden_activation": "gelu",
        "norm_eps": 1e-5,
        "norm_bias": False,
        "attention_bias": False,
        "mlp_bias": False,
        "global_rope_theta": 160000.0,
        "local_rope_theta": 10000.0,
        "global_attn_every_n_layers": 3,
        "local_attention": 16,
        "classifier_pooling": "mean",
        "classifier_activation": "gelu",
        "classifier_bias": False,
    },
}


def init_like_hf(model: torch.nn.Module, generator: torch.Generator) -> None:
    """Normal(0, 0.02) matrices and tables, zero biases, unit norm weights (initializer_range 0.02)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight") or name.endswith("LayerNorm.weight"):
                p.fill_(1.0)
            elif name.endswith("bias"):
                p.zero_()
            else:
                p.copy_(0.02 * torch.randn(p.shape, generator=generator))


def batches(ids: list, labels: list, size: int, shuffle: random.Random | None):
    order = list(range(len(ids)))
    if shuffle:
        shuffle.shuffle(order)
    for start in range(0, len(order), size):
        rows = [ids[i] for i in order[start : start + size]]
        width = max(len(r) for r in rows)
        x = torch.tensor([r + [0] * (width - len(r)) for r in rows])
        mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
        y = torch.tensor([labels[i] for i in order[start : start + size]])
        yield x, mask, y


def accuracy(model, data) -> float:
    model.eval()
    right = 0
    with torch.no_grad():
        for x, mask, y in batches(data["ids"], data["labels"], 128, None):
            right += (model(x, mask).argmax(-1) == y).sum().item()
    model.train()
    return right / len(data["labels"])


def main() -> None:
    data_path, family, out = sys.argv[1:4]
    epochs = float(sys.argv[4]) if len(sys.argv) > 4 else 0.3
    torch.set_num_threads(1)  # a shared machine
    torch.manual_seed(17)
    generator = torch.Generator().manual_seed(17)
    with open(data_path) as f:
        data = json.load(f)
    config = CONFIGS[family]
    model = encoders.build(config)
    init_like_hf(model, generator)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.01)
    size = 64
    total = math.ceil(epochs * math.ceil(len(data["train"]["ids"]) / size))
    warmup = total // 20
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / (total - warmup)))
    )
    shuffle = random.Random(17)
    step, start = 0, time.process_time()
    while step < total:
        for x, mask, y in batches(data["train"]["ids"], data["train"]["labels"], size, shuffle):
            loss = F.cross_entropy(model(x, mask), y)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            step += 1
            if step % 200 == 0:
                print(f"{family} step {step}/{total} loss {loss.item():.3f}", file=sys.stderr)
            if step >= total:
                break
    seconds = time.process_time() - start
    dev = accuracy(model, data["dev"])

    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    safetensors_io.save({n: t.detach().float() for n, t in model.state_dict().items()}, os.path.join(out, "model.safetensors"))
    print(json.dumps({"family": family, "devAccuracy": dev, "steps": step, "epochs": epochs, "cpuSeconds": round(seconds, 1)}))


if __name__ == "__main__":
    main()
