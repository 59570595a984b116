import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import path from 'node:path'

/** The repository root, from this file's place in `test/compat/`. */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')

/** The team's shared copy of the Formance Ledger v2 OpenAPI document, beside the repository. */
export const specPath = path.resolve(repoRoot, '..', 'shared', 'reference', 'formance-ledger-v2-openapi.yaml')

export interface SpecOperation {
  readonly method: string
  readonly path: string
  readonly operationId: string
}

/** Why spec-based tests skip, or `false` when the spec is there. */
export function specMissing(): string | false {
  return existsSync(specPath) ? false : `the shared v2 OpenAPI document is absent (${specPath}); spec checks skipped`
}

export function readSpecOperations(): SpecOperation[] {
  return parseSpecOperations(readFileSync(specPath, 'utf8'))
}

/**
 * `paths:` → method → operationId, by indentation alone (two spaces a
 * level, as the v2 document is written): enough to enumerate operations
 * without a YAML parser. Throws on a method without an operationId.
 */
export function parseSpecOperations(text: string): SpecOperation[] {
  const found: SpecOperation[] = []
  let inPaths = false
  let currentPath: string | undefined
  let currentMethod: string | undefined
  const flush = (): void => {
    if (currentMethod !== undefined) throw new Error(`spec: ${currentMethod.toUpperCase()} ${currentPath ?? '?'} has no operationId`)
  }
  for (const line of text.split(/\r?\n/)) {
    if (!inPaths) {
      if (/^paths:\s*$/.test(line)) inPaths = true
      continue
    }
    if (/^\S/.test(line)) break // the next top-level key ends `paths:`
    const pathMatch = /^ {2}(\/\S*):\s*$/.exec(line)
    if (pathMatch !== null) {
      flush()
      currentPath = pathMatch[1]
      continue
    }
    const methodMatch = /^ {4}(get|put|post|delete|head|patch|options|trace):\s*$/.exec(line)
    if (methodMatch !== null) {
      flush()
      currentMethod = methodMatch[1]
      continue
    }
    const idMatch = /^ {6}operationId:\s*["']?([A-Za-z0-9_]+)["']?\s*$/.exec(line)
    if (idMatch !== null && currentPath !== undefined && currentMethod !== undefined) {
      found.push({ method: currentMethod, path: currentPath, operationId: idMatch[1] as string })
      currentMethod = undefined
    }
  }
  flush()
  return found
}
