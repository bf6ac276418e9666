/** What users give a model, whatever its task: files, requests and the runtime share these. */

/** Two texts read as one input (query and passage, premise and hypothesis), named as /predict names them. */
export interface TextPair {
  text: string;
  text_pair: string;
}

/** One input as a user gives it: a text, a text pair, or the bytes of an image file. */
export type ModelInput = string | TextPair | Uint8Array;
