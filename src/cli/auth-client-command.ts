import { randomBytes } from 'node:crypto'
import { parseArgs } from 'node:util'
import { hashClientSecret, parseApiClients, scopeNames } from '../api/index.ts'

const usage = `Usage: tally auth-client --id ID --scopes SCOPES [--ledgers LEDGERS]

Makes a new API client for tally serve --auth-clients FILE: a random secret,
printed once on stderr (give it to the client; Tally keeps only its scrypt
hash), and the client's entry for FILE's "clients" list on stdout.

Options:
  --id ID            client id (letters, digits, . _ -)
  --scopes SCOPES    comma-separated: ${scopeNames.join(', ')}
  --ledgers LEDGERS  comma-separated ledger names the client may touch (default: all)
  -h, --help         show this help

Example:
  tally auth-client --id payments --scopes ledger:read,ledger:write --ledgers main
`

export async function authClientCommand(argv: string[]): Promise<number> {
  let values: { id?: string | undefined; scopes?: string | undefined; ledgers?: string | undefined; help?: boolean | undefined }
  try {
    ;({ values } = parseArgs({ args: argv, options: { id: { type: 'string' }, scopes: { type: 'string' }, ledgers: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, strict: true }))
  } catch (error) {
    process.stderr.write(`tally auth-client: ${(error as Error).message}\n\n${usage}`)
    return 2
  }
  if (values.help === true) {
    process.stdout.write(usage)
    return 0
  }
  if (values.id === undefined || values.scopes === undefined) {
    process.stderr.write(`tally auth-client: --id and --scopes are required\n\n${usage}`)
    return 2
  }
  const secret = randomBytes(32).toString('base64url')
  const entry = {
    id: values.id,
    secretHash: await hashClientSecret(secret),
    scopes: values.scopes.split(',').map((scope) => scope.trim()),
    ...(values.ledgers === undefined ? {} : { ledgers: values.ledgers.split(',').map((ledger) => ledger.trim()) }),
  }
  try {
    parseApiClients({ clients: [entry] }, 'tally auth-client')
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`)
    return 2
  }
  process.stderr.write(`client secret for ${values.id} (shown once, keep it in your secret store): ${secret}\n`)
  process.stdout.write(`${JSON.stringify(entry)}\n`)
  return 0
}
