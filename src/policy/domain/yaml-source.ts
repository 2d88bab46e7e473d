import type { ErrorObject } from 'ajv/dist/2020.js';
import { isMap, isScalar, LineCounter, parseDocument, type Document } from 'yaml';

export interface SourcePosition {
  line: number;
  column: number;
}

export type YamlPath = (string | number)[];

/** A YAML file read for a reviewer: its value and where each part of it is, or why it is not YAML. */
export type YamlSource =
  | { value: unknown; positionOf: (path: YamlPath) => SourcePosition }
  | { problems: (SourcePosition & { message: string })[] };

export function readYamlSource(text: string): YamlSource {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length > 0) {
    return { problems: doc.errors.map((error) => ({ ...toPosition(lineCounter, error.pos[0]), message: `YAML: ${error.message.split('\n')[0]}` })) };
  }
  try {
    return { value: doc.toJS(), positionOf: (path) => position(doc, lineCounter, path) };
  } catch (error) {
    // Such as an alias bomb: "Excessive alias count indicates a resource exhaustion attack".
    return { problems: [{ line: 1, column: 1, message: `YAML: ${(error as Error).message.split('\n')[0]}` }] };
  }
}

/** The path of the value a JSON Schema error is about (for a property not allowed, the property). */
export function schemaErrorPath(error: ErrorObject): YamlPath {
  const path = error.instancePath
    .split('/')
    .slice(1)
    .map((p) => p.replaceAll('~1', '/').replaceAll('~0', '~'))
    .map((p) => (/^\d+$/.test(p) ? Number(p) : p));
  if (error.keyword === 'additionalProperties') path.push(String(error.params.additionalProperty));
  return path;
}

/**
 * A value that matches none of a oneOf/anyOf's alternatives makes ajv report every alternative's
 * complaint; one message about the value says it better.
 */
export function simplifySchemaErrors(errors: ErrorObject[]): ErrorObject[] {
  const alternatives = errors.filter((e) => e.keyword === 'oneOf' || e.keyword === 'anyOf');
  return errors.filter((e) => {
    if (e.keyword === 'oneOf' || e.keyword === 'anyOf') return !alternatives.some((o) => o !== e && e.schemaPath.startsWith(`${o.schemaPath}/`));
    return !alternatives.some((o) => e.schemaPath.startsWith(`${o.schemaPath}/`) && (e.instancePath === o.instancePath || e.instancePath.startsWith(`${o.instancePath}/`)));
  });
}

/** Line and column of the YAML node at a path, else of its nearest existing parent. */
function position(doc: Document, lineCounter: LineCounter, path: YamlPath): SourcePosition {
  for (let depth = path.length; depth >= 0; depth--) {
    const sub = path.slice(0, depth);
    const parent = sub.length > 1 ? doc.getIn(sub.slice(0, -1), true) : doc.contents;
    // For a key, point at the key itself (it exists even when its value is empty).
    if (sub.length > 0 && isMap(parent)) {
      const pair = parent.items.find((item) => isScalar(item.key) && item.key.value === sub[sub.length - 1]);
      const range = (pair?.key as { range?: [number, number, number] } | undefined)?.range;
      if (range) return toPosition(lineCounter, range[0]);
    }
    const node = sub.length === 0 ? doc.contents : doc.getIn(sub, true);
    const range = (node as { range?: [number, number, number] } | null | undefined)?.range;
    if (range) return toPosition(lineCounter, range[0]);
  }
  return { line: 1, column: 1 };
}

function toPosition(lineCounter: LineCounter, offset: number): SourcePosition {
  const { line, col } = lineCounter.linePos(offset);
  return { line, column: col };
}
