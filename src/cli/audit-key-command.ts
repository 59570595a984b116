import { generateKeyPairSync } from 'node:crypto'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { NoteError, formatSignerKey, isValidKeyName, parseSignerKey, seedOf } from '../audit/index.ts'

const usage = `Usage: tally audit-key --out FILE [--name NAME]
       tally audit-key --show FILE

Generates the Ed25519 key a server signs its audit checkpoints with
(docs/check.md). The signer key is written to FILE (mode 0600, never
overwritten) in the C2SP signed-note form; the verifier key — the public
half, for tally check --verifier-key — is printed on stdout.

Keep FILE outside every data directory (tally serve refuses a key inside
it) and give it to the server with --audit-key FILE.

Options:
  --out FILE     where to write the new signer key (must not exist)
  --name NAME    the key name in signatures (no spaces, no +)   [default tally-audit]
  --show FILE    print the verifier key of an existing signer key
  -h, --help     show this help
`

export async function auditKeyCommand(argv: string[]): Promise<number> {
  let values: { out?: string | undefined; name?: string | undefined; show?: string | undefined; help?: boolean | undefined }
  try {
    ;({ values } = parseArgs({ args: argv, options: { out: { type: 'string' }, name: { type: 'string' }, show: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, strict: true }))
  } catch (error) {
    process.stderr.write(`tally audit-key: ${(error as Error).message}\n\n${usage}`)
    return 2
  }
  if (values.help === true) {
    process.stdout.write(usage)
    return 0
  }
  if (values.show !== undefined) {
    try {
      process.stdout.write(`${parseSignerKey(readFileSync(values.show, 'utf8')).verifier.text}\n`)
      return 0
    } catch (error) {
      process.stderr.write(`tally audit-key: ${values.show}: ${error instanceof NoteError ? `not a signer key (${error.message})` : (error as Error).message}\n`)
      return 2
    }
  }
  if (values.out === undefined) {
    process.stderr.write(`tally audit-key: --out FILE is required\n\n${usage}`)
    return 2
  }
  const name = values.name ?? 'tally-audit'
  if (!isValidKeyName(name)) {
    process.stderr.write(`tally audit-key: --name ${JSON.stringify(name)}: a key name has no spaces and no +\n`)
    return 2
  }
  const file = path.resolve(values.out)
  if (existsSync(file)) {
    process.stderr.write(`tally audit-key: ${file} exists; refusing to overwrite a key (move it away first)\n`)
    return 2
  }
  const { privateKey } = generateKeyPairSync('ed25519')
  const signerKey = formatSignerKey(name, seedOf(privateKey))
  try {
    writeFileSync(file, `${signerKey}\n`, { mode: 0o600, flag: 'wx' })
  } catch (error) {
    process.stderr.write(`tally audit-key: cannot write ${file}: ${(error as Error).message}\n`)
    return 2
  }
  process.stderr.write(`tally audit-key: signer key written to ${file}; the verifier key follows\n`)
  process.stdout.write(`${parseSignerKey(signerKey).verifier.text}\n`)
  return 0
}
