/**
 * `kiln run`'s line for a token classifier: the number of entities, then the text with each
 * entity marked inline — in color with its label after it on a terminal, `[text](LABEL)`
 * otherwise — or, when asked, the redacted text.
 */
import type { TokenAnswer } from './model.js';

const COLORS = [33, 36, 35, 32, 34, 31];

export function highlight(answer: TokenAnswer, color: boolean): string {
  const { text, entities } = answer;
  const tags: string[] = [];
  let out = '';
  let at = 0;
  const placed = entities
    .filter((e) => e.start !== null && e.end !== null && e.start >= at)
    .sort((a, b) => a.start! - b.start!);
  for (const e of placed) {
    if (e.start! < at) continue;
    const label = 'entity_group' in e ? e.entity_group : e.entity;
    const tag = label.replace(/^[BI]-/, '');
    if (!tags.includes(tag)) tags.push(tag);
    const piece = text.slice(e.start!, e.end!);
    const code = COLORS[tags.indexOf(tag) % COLORS.length];
    out += text.slice(at, e.start!);
    out += color ? `\x1b[1;${code}m${piece}\x1b[0m\x1b[2m ${label}\x1b[0m` : `[${piece}](${label})`;
    at = e.end!;
  }
  out += text.slice(at);
  const found = `${entities.length} ${entities.length === 1 ? 'entity' : 'entities'}`;
  // One line per text: the redacted text when asked, else the text with its entities marked.
  const shown = answer.redacted ?? out;
  return `${found}  ${shown.replace(/\s*\n\s*/g, ' ')}`;
}
