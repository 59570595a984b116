import { parseArgs } from 'node:util'
import path from 'node:path'
import { LedgerNode } from '../server/index.ts'
import { buildApi } from '../api/index.ts'
import { cacheGenerationBytesMaxDefault, cacheRotationThresholdDefault } from '../cache/index.ts'
import { AuditHistoryRewritten, AuditKeyError, auditCheckpointEntriesDefault, loadAuditCheckpointSettings } from '../server/index.ts'
import type { AuditCheckpointSettings } from '../server/index.ts'
import { nodeLogLines, parseLogLevel, prettyLines } from './log-lines.ts'
import { isIP } from 'node:net'
import { readFileSync } from 'node:fs'
import { SigningKey, audienceDefault, builtInIssuerDefault, loadApiClients, tokenSecondsDefault } from '../api/index.ts'
import type { ApiOptions, AuthOptions } from '../api/index.ts'

const usage = `Usage: tally serve [options]

Starts a single-node Tally serving the Formance Ledger v2 API.

Options (each also read from the environment variable shown):
  --data DIR                      data directory            [TALLY_DATA, default ./data]
  --listen HOST:PORT              address to listen on      [TALLY_LISTEN, default 127.0.0.1:3068]
  --cache-rotation-threshold K    cache generation length, in log entries
                                                            [TALLY_CACHE_ROTATION_THRESHOLD, default ${cacheRotationThresholdDefault}]
  --cache-generation-bytes-max B  cache generation byte budget (e.g. 64MiB); the
                                  cache holds about twice that
                                                            [TALLY_CACHE_GENERATION_BYTES_MAX, default ${cacheGenerationBytesMaxDefault / 1024 / 1024}MiB]
                                  Both cache settings are replicated: they set a new data
                                  directory; on an existing one a different value is logged
                                  as a settings change, and leaving them out keeps the stored ones.
  --bulk-elements-max N           largest _bulk accepted    [TALLY_BULK_ELEMENTS_MAX, default 10000]
  --audit-key FILE                sign audit checkpoints with this key, kept outside --data
                                  (tally audit-key makes one)  [TALLY_AUDIT_KEY]
  --audit-checkpoint-entries N    audit entries between two checkpoints
                                  [TALLY_AUDIT_CHECKPOINT_ENTRIES, default ${auditCheckpointEntriesDefault}]
  --audit-checkpoint-file FILE    also append every checkpoint to FILE, outside --data
                                  [TALLY_AUDIT_CHECKPOINT_FILE]
  --tls-cert FILE --tls-key FILE  serve HTTPS with this PEM certificate chain and key
                                                            [TALLY_TLS_CERT, TALLY_TLS_KEY]
  --auth-clients FILE             require bearer tokens; serve the OAuth2 token endpoint for
                                  these API clients (docs/security.md) [TALLY_AUTH_CLIENTS]
  --auth-signing-key FILE         Ed25519 PKCS#8 PEM key signing the tokens (default: one made
                                  at start; tokens then end with the process) [TALLY_AUTH_SIGNING_KEY]
  --auth-issuer URL               also trust tokens of this OpenID Connect issuer (JWKS from
                                  its discovery document)       [TALLY_AUTH_ISSUER]
  --auth-audience AUD             the audience every token must carry [TALLY_AUTH_AUDIENCE, default tally]
  --auth-token-seconds N          lifetime of issued tokens [TALLY_AUTH_TOKEN_SECONDS, default 300]
                                  Auth on an address other than loopback needs --tls-cert.
  --log-level LEVEL               trace, debug, info, warn, error, fatal or silent: JSON lines
                                  on stderr (readable lines on a terminal)
                                                            [TALLY_LOG_LEVEL, default info]
  -h, --help                      show this help
`

export interface ServeSettings {
  readonly dataDirectory: string
  readonly host: string
  readonly port: number
  /** undefined: keep the data directory's own (the default for a new one). */
  readonly cacheRotationThreshold: number | undefined
  readonly cacheGenerationBytesMax: number | undefined
  readonly bulkElementsMax: number
  readonly auditKeyFile?: string
  readonly auditCheckpointEntries?: number
  readonly auditCheckpointFile?: string
  readonly logLevel: string
  readonly tls?: { readonly certFile: string; readonly keyFile: string }
  readonly auth?: AuthSettings
}

export interface AuthSettings {
  readonly clientsFile?: string
  readonly signingKeyFile?: string
  readonly externalIssuer?: string
  readonly audience: string
  readonly tokenSeconds: number
}

export function parseServeArgs(argv: string[], env: NodeJS.ProcessEnv): ServeSettings | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
      data: { type: 'string' },
      listen: { type: 'string' },
      'cache-rotation-threshold': { type: 'string' },
      'cache-generation-bytes-max': { type: 'string' },
      'bulk-elements-max': { type: 'string' },
      'audit-key': { type: 'string' },
      'audit-checkpoint-entries': { type: 'string' },
      'audit-checkpoint-file': { type: 'string' },
      'log-level': { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'auth-clients': { type: 'string' },
      'auth-signing-key': { type: 'string' },
      'auth-issuer': { type: 'string' },
      'auth-audience': { type: 'string' },
      'auth-token-seconds': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  })
  if (values.help === true) return 'help'
  const listen = values.listen ?? env.TALLY_LISTEN ?? '127.0.0.1:3068'
  const match = /^(.*):(\d{1,5})$/.exec(listen)
  if (match === null) throw new Error(`--listen: expected HOST:PORT, got ${JSON.stringify(listen)}`)
  const port = Number(match[2])
  if (port > 65535) throw new Error(`--listen: port ${port} out of range`)
  const host = (match[1] as string).replace(/^\[(.*)\]$/, '$1')
  const tls = tlsSettings(values, env)
  const auth = authSettings(values, env)
  // As Formance v3: a token sent in clear text beyond this machine is a token given away.
  if (auth !== undefined && tls === undefined && !isLoopback(host)) throw new Error(`authentication on ${host}, which is not a loopback address, needs TLS (--tls-cert and --tls-key)`)
  return {
    ...(tls === undefined ? {} : { tls }),
    ...(auth === undefined ? {} : { auth }),
    dataDirectory: path.resolve(values.data ?? env.TALLY_DATA ?? 'data'),
    host,
    port,
    cacheRotationThreshold: optional(values['cache-rotation-threshold'] ?? env.TALLY_CACHE_ROTATION_THRESHOLD, (value) =>
      positiveInteger(value, 0, '--cache-rotation-threshold'),
    ),
    cacheGenerationBytesMax: optional(values['cache-generation-bytes-max'] ?? env.TALLY_CACHE_GENERATION_BYTES_MAX, (value) =>
      byteSize(value, '--cache-generation-bytes-max'),
    ),
    bulkElementsMax: positiveInteger(values['bulk-elements-max'] ?? env.TALLY_BULK_ELEMENTS_MAX, 10_000, '--bulk-elements-max'),
    ...auditSettings(values, env),
    logLevel: parseLogLevel(values['log-level'] ?? env.TALLY_LOG_LEVEL ?? 'info'),
  }
}

function auditSettings(values: Record<string, string | boolean | undefined>, env: NodeJS.ProcessEnv): Pick<ServeSettings, 'auditKeyFile' | 'auditCheckpointEntries' | 'auditCheckpointFile'> {
  const pick = (flag: string, variable: string): string | undefined => {
    const value = values[flag] ?? env[variable]
    return typeof value === 'string' && value !== '' ? value : undefined
  }
  const keyFile = pick('audit-key', 'TALLY_AUDIT_KEY')
  const entries = pick('audit-checkpoint-entries', 'TALLY_AUDIT_CHECKPOINT_ENTRIES')
  const file = pick('audit-checkpoint-file', 'TALLY_AUDIT_CHECKPOINT_FILE')
  if (keyFile === undefined && (entries !== undefined || file !== undefined)) throw new Error('--audit-checkpoint-entries and --audit-checkpoint-file need --audit-key')
  return {
    ...(keyFile === undefined ? {} : { auditKeyFile: path.resolve(keyFile) }),
    ...(entries === undefined ? {} : { auditCheckpointEntries: positiveInteger(entries, auditCheckpointEntriesDefault, '--audit-checkpoint-entries') }),
    ...(file === undefined ? {} : { auditCheckpointFile: path.resolve(file) }),
  }
}

type FlagValues = Record<string, string | boolean | undefined>

function pickFlag(values: FlagValues, env: NodeJS.ProcessEnv, flag: string, variable: string): string | undefined {
  const value = values[flag] ?? env[variable]
  return typeof value === 'string' && value !== '' ? value : undefined
}

function tlsSettings(values: FlagValues, env: NodeJS.ProcessEnv): ServeSettings['tls'] {
  const certFile = pickFlag(values, env, 'tls-cert', 'TALLY_TLS_CERT')
  const keyFile = pickFlag(values, env, 'tls-key', 'TALLY_TLS_KEY')
  if (certFile === undefined && keyFile === undefined) return undefined
  if (certFile === undefined || keyFile === undefined) throw new Error('--tls-cert and --tls-key go together')
  return { certFile: path.resolve(certFile), keyFile: path.resolve(keyFile) }
}

function authSettings(values: FlagValues, env: NodeJS.ProcessEnv): AuthSettings | undefined {
  const clientsFile = pickFlag(values, env, 'auth-clients', 'TALLY_AUTH_CLIENTS')
  const signingKeyFile = pickFlag(values, env, 'auth-signing-key', 'TALLY_AUTH_SIGNING_KEY')
  const externalIssuer = pickFlag(values, env, 'auth-issuer', 'TALLY_AUTH_ISSUER')
  const audience = pickFlag(values, env, 'auth-audience', 'TALLY_AUTH_AUDIENCE')
  const tokenSeconds = pickFlag(values, env, 'auth-token-seconds', 'TALLY_AUTH_TOKEN_SECONDS')
  if (clientsFile === undefined && externalIssuer === undefined) {
    if (signingKeyFile !== undefined || audience !== undefined || tokenSeconds !== undefined) throw new Error('--auth-signing-key, --auth-audience and --auth-token-seconds need --auth-clients or --auth-issuer')
    return undefined
  }
  if (externalIssuer !== undefined && !/^https?:\/\/[^\s]+$/.test(externalIssuer)) throw new Error(`--auth-issuer: expected an http(s) URL, got ${JSON.stringify(externalIssuer)}`)
  const seconds = positiveInteger(tokenSeconds, tokenSecondsDefault, '--auth-token-seconds')
  if (seconds > 86_400) throw new Error('--auth-token-seconds: at most 86400 (tokens are meant to be short-lived)')
  return {
    ...(clientsFile === undefined ? {} : { clientsFile: path.resolve(clientsFile) }),
    ...(signingKeyFile === undefined ? {} : { signingKeyFile: path.resolve(signingKeyFile) }),
    ...(externalIssuer === undefined ? {} : { externalIssuer }),
    audience: audience ?? audienceDefault,
    tokenSeconds: seconds,
  }
}

/** 127.0.0.0/8, ::1 and localhost: the only addresses where auth may go without TLS. */
export function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true
  const v4 = host.replace(/^::ffff:/, '')
  if (isIP(v4) === 4) return v4.startsWith('127.')
  return false
}

function positiveInteger(value: string | undefined, fallback: number, flag: string): number {
  if (value === undefined) return fallback
  if (!/^[1-9][0-9]{0,8}$/.test(value)) throw new Error(`${flag}: expected a positive integer, got ${JSON.stringify(value)}`)
  return Number(value)
}

function optional<T>(value: string | undefined, parse: (value: string) => T): T | undefined {
  return value === undefined ? undefined : parse(value)
}

const byteUnits = new Map<string, number>([
  ['', 1],
  ['b', 1],
  ['kib', 1024],
  ['mib', 1024 ** 2],
  ['gib', 1024 ** 3],
  ['k', 1024],
  ['m', 1024 ** 2],
  ['g', 1024 ** 3],
])

/** A byte count: an integer, optionally with a binary unit (64MiB, 512k, 1G). */
export function byteSize(value: string, flag: string): number {
  const match = /^([1-9][0-9]{0,12})\s*([a-zA-Z]*)$/.exec(value)
  const unit = match === null ? undefined : byteUnits.get((match[2] as string).toLowerCase())
  if (match === null || unit === undefined) throw new Error(`${flag}: expected a byte count such as 67108864 or 64MiB, got ${JSON.stringify(value)}`)
  const bytes = Number(match[1]) * unit
  if (!Number.isSafeInteger(bytes) || bytes < 1024) throw new Error(`${flag}: expected at least 1KiB, got ${JSON.stringify(value)}`)
  return bytes
}

export async function serveCommand(argv: string[]): Promise<number> {
  let settings: ServeSettings | 'help'
  try {
    settings = parseServeArgs(argv, process.env)
  } catch (error) {
    process.stderr.write(`tally serve: ${(error as Error).message}\n\n${usage}`)
    return 2
  }
  if (settings === 'help') {
    process.stdout.write(usage)
    return 0
  }
  const logStream = process.stderr.isTTY ? prettyLines(process.stderr) : process.stderr
  const log = nodeLogLines({ level: settings.logLevel, stream: logStream })
  let auditCheckpoints: AuditCheckpointSettings | undefined
  try {
    auditCheckpoints =
      settings.auditKeyFile === undefined
        ? undefined
        : loadAuditCheckpointSettings({ dataDirectory: settings.dataDirectory, keyFile: settings.auditKeyFile, appendFile: settings.auditCheckpointFile, entriesMax: settings.auditCheckpointEntries })
  } catch (error) {
    if (!(error instanceof AuditKeyError)) throw error
    process.stderr.write(`tally serve: ${error.message}\n`)
    return 2
  }
  let security: Pick<ApiOptions, 'tls' | 'auth'>
  try {
    security = await loadSecurity(settings)
  } catch (error) {
    process.stderr.write(`tally serve: ${(error as Error).message}\n`)
    return 2
  }
  log(`opening ${settings.dataDirectory}`)
  let node: LedgerNode
  try {
    node = await LedgerNode.open({
      dataDirectory: settings.dataDirectory,
      ...(settings.cacheRotationThreshold === undefined ? {} : { cacheRotationThreshold: settings.cacheRotationThreshold }),
      ...(settings.cacheGenerationBytesMax === undefined ? {} : { cacheGenerationBytesMax: settings.cacheGenerationBytesMax }),
      log,
      ...(auditCheckpoints === undefined ? {} : { auditCheckpoints }),
    })
  } catch (error) {
    if (!(error instanceof AuditHistoryRewritten)) throw error
    process.stderr.write(`tally serve: ${error.message}\n`)
    return 1
  }
  if (auditCheckpoints === undefined) log('audit: no --audit-key: no signed checkpoints (the audit chain alone proves nothing to a holder of the store)')
  const app = await buildApi(node, { bulkElementsMax: settings.bulkElementsMax, logger: { level: settings.logLevel, stream: logStream }, ...security })
  await app.listen({ host: settings.host, port: settings.port })
  const address = app.server.address()
  const bound = typeof address === 'object' && address !== null ? `${address.address}:${address.port}` : String(address)
  const scheme = security.tls === undefined ? 'http' : 'https'
  log(`tally listening on ${scheme}://${bound} (applied index ${node.fsm.appliedIndex})`, { auth: security.auth === undefined ? 'off' : 'on', tls: security.tls === undefined ? 'off' : 'on' })
  if (security.auth === undefined && !isLoopback(settings.host)) log(`no --auth-clients on ${settings.host}: anyone who reaches the port can move money`, { level: 'warn' })
  process.stdout.write(`listening ${bound}\n`)
  return new Promise<number>((resolve) => {
    let stopping = false
    const stop = (signal: string): void => {
      if (stopping) return
      stopping = true
      log(`${signal}: draining and shutting down`)
      app
        .close()
        .then(() => node.close())
        .then(() => {
          log('stopped cleanly')
          resolve(0)
        })
        .catch((error: unknown) => {
          log(`shutdown failed: ${String(error)}`, { level: 'error' })
          resolve(1)
        })
    }
    process.once('SIGTERM', () => stop('SIGTERM'))
    process.once('SIGINT', () => stop('SIGINT'))
  })
}

/** Reads the TLS material and the API clients before anything opens: a bad file stops the start. */
async function loadSecurity(settings: ServeSettings): Promise<Pick<ApiOptions, 'tls' | 'auth'>> {
  const tls = settings.tls === undefined ? undefined : { cert: readFileSync(settings.tls.certFile), key: readFileSync(settings.tls.keyFile) }
  if (settings.auth === undefined) return tls === undefined ? {} : { tls }
  const auth: AuthOptions = {
    clients: settings.auth.clientsFile === undefined ? new Map() : loadApiClients(settings.auth.clientsFile),
    key: settings.auth.signingKeyFile === undefined ? await SigningKey.generate() : await SigningKey.fromFile(settings.auth.signingKeyFile),
    settings: {
      issuer: builtInIssuerDefault,
      audience: settings.auth.audience,
      tokenSeconds: settings.auth.tokenSeconds,
      ...(settings.auth.externalIssuer === undefined ? {} : { externalIssuer: settings.auth.externalIssuer }),
    },
  }
  return { ...(tls === undefined ? {} : { tls }), auth }
}
