import { parseArgs } from 'node:util'
import { accessSync, constants, mkdirSync } from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { LedgerNode } from '../server/index.ts'
import { answerCacheBytesDefault, bodyBytesMaxFor, buildApi, transportLimitsDefault } from '../api/index.ts'
import type { TransportLimits } from '../api/index.ts'
import { cacheGenerationBytesMaxDefault, cacheRotationThresholdDefault } from '../cache/index.ts'
import { AuditHistoryRewritten, AuditKeyError, auditCheckpointEntriesDefault, checkpointEntriesDefault, loadAuditCheckpointSettings, loopStallThresholdMsDefault, walPreallocateBytesDefault, walRetainBytesDefault, walRetainEntriesDefault } from '../server/index.ts'
import type { AuditCheckpointSettings } from '../server/index.ts'
import { linesPerTurn, nodeLogLines, parseLogLevel, prettyLines } from './log-lines.ts'
import { isIP } from 'node:net'
import { readFileSync } from 'node:fs'
import { SigningKey, audienceDefault, builtInIssuerDefault, loadApiClients, tokenSecondsDefault } from '../api/index.ts'
import type { ApiOptions, AuthOptions } from '../api/index.ts'
import { AcknowledgementGate, ClusterNode, ControlPlaneUnavailable, EtcdControlPlane, formatAddress, isNodeId, parseClusterUrl, recoverySecondsMax, recoveryTuningFrom, sharedClusterId, type RecoveryLimits } from '../cluster/index.ts'
import { installStagedSnapshot } from '../cluster/snapshot/index.ts'
import { forwardWritesToPrimary } from '../cluster/forward.ts'
import { durabilityModes, validateDurability, type DurabilityMode, type ReplicaId } from '../replication/index.ts'
import { parsePeerAddress } from '../cluster/peer/index.ts'

/** The stall watch ticks every 20 ms; a lower threshold would log its jitter. */
const loopStallMsMin = 50

const usage = `Usage: tally serve [options]

Starts a single-node Tally serving the Formance Ledger v2 API, or, with
--cluster, one node of a replicated cluster coordinated through etcd
(docs/cluster.md, "Running a cluster").

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
  --body-bytes-max N              largest request body      [TALLY_BODY_BYTES_MAX, default 1 MiB + 2 KiB per bulk element]
  --request-timeout-ms MS         whole request must arrive [TALLY_REQUEST_TIMEOUT_MS, default ${transportLimitsDefault.requestTimeoutMs}]
  --headers-timeout-ms MS         headers must arrive       [TALLY_HEADERS_TIMEOUT_MS, default ${transportLimitsDefault.headersTimeoutMs}]
  --idle-timeout-ms MS            idle keep-alive closed    [TALLY_IDLE_TIMEOUT_MS, default ${transportLimitsDefault.idleTimeoutMs}]
  --connections-max N             open connections bound    [TALLY_CONNECTIONS_MAX, default ${transportLimitsDefault.connectionsMax}]
  --shutdown-grace-ms MS          drain bound at shutdown   [TALLY_SHUTDOWN_GRACE_MS, default ${transportLimitsDefault.shutdownGraceMs}]
  --checkpoint-entries N          applied entries between store checkpoints (and, in a
                                  cluster, snapshot checks) [TALLY_CHECKPOINT_ENTRIES, default ${checkpointEntriesDefault}]
  --wal-retain-entries N          WAL entries kept below a checkpoint
                                                            [TALLY_WAL_RETAIN_ENTRIES, default ${walRetainEntriesDefault}]
  --wal-retain-bytes B            at most about B bytes of WAL kept below a checkpoint,
                                  whatever --wal-retain-entries says (whole segments)
                                                            [TALLY_WAL_RETAIN_BYTES, default ${walRetainBytesDefault / 1024 / 1024 / 1024} GiB]
  --wal-segment-bytes-max B       WAL segment size; recycling drops whole segments
                                                            [TALLY_WAL_SEGMENT_BYTES_MAX, default 64 MiB]
  --wal-preallocate-bytes B       zeros written ahead of the WAL's entries, so that a group's
                                  fdatasync need not commit the file system's journal; 0: none
                                                            [TALLY_WAL_PREALLOCATE_BYTES, default ${walPreallocateBytesDefault / 1024 / 1024} MiB]
  --answer-cache-bytes B          room for read answers kept between writes (docs/reads.md);
                                  0 keeps none          [TALLY_ANSWER_CACHE_BYTES, default ${answerCacheBytesDefault / 1024 / 1024} MiB]
  --loop-stall-ms MS              an event-loop delay this long is logged (warn) and counted
                                  as a stall, with what held the loop
                                                            [TALLY_LOOP_STALL_MS, default ${loopStallThresholdMsDefault}, at least ${loopStallMsMin}]
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

Cluster mode (docs/cluster.md; every node of a cluster gives the same --cluster, --cluster-size
and --durability):
  --cluster etcd://HOST:PORT[,HOST:PORT...][/PREFIX]
                                  run as a cluster node coordinated through this etcd
                                                            [TALLY_CLUSTER]
  --node-id ID                    this node's stable id (letters, digits, . _ -) [TALLY_NODE_ID]
  --peer-listen HOST:PORT         where replicas take the primary's WAL entries (port 0: a
                                  free port, the bound one registered)  [TALLY_PEER_LISTEN]
  --peer-advertise HOST:PORT      the peer address registered for the other nodes, when they
                                  reach this one elsewhere  [TALLY_PEER_ADVERTISE, default --peer-listen]
  --advertise HOST:PORT           the HTTP address registered for the other nodes (forwarded
                                  writes)                   [TALLY_ADVERTISE, default --listen]
  --cluster-size N                members of the first assignment: made once N nodes registered,
                                  the lowest id primary     [TALLY_CLUSTER_SIZE, default 3]
  --durability MODE               sync_quorum, sync_all or best_effort
                                                            [TALLY_DURABILITY, default sync_quorum
                                                             from 3 members, sync_all below]
  --cluster-lease-ttl-seconds N   registration and primary lease TTL: a dead primary whose replicas
                                  did not notice first is replaced after about this long
                                                            [TALLY_CLUSTER_LEASE_TTL_SECONDS, default 3]
  --cluster-write-deadline-ms MS  a primary cut off from etcd this long answers the writes it
                                  admitted as of unknown outcome (503, retry with the same
                                  idempotency key)          [TALLY_CLUSTER_WRITE_DEADLINE_MS, default 5000]
  --peer-backoff-ms-min MS        a primary redials a lost replica after MIN ms, doubling up to
  --peer-backoff-ms-max MS        MAX (at once when the replica registers again)
                                                            [TALLY_PEER_BACKOFF_MS_MIN/_MAX, default 50/5000]
  --cluster-catchup-seconds-max N a replica's catch-up from the WAL longer than this escalates to a
                                  rebuild from a snapshot   [TALLY_CLUSTER_CATCHUP_SECONDS_MAX, default 60]
  --cluster-catchup-entries-max N ... or more entries than this (a replica that cannot keep up)
                                                            [TALLY_CLUSTER_CATCHUP_ENTRIES_MAX, default unlimited]
  --cluster-catchup-stall-seconds N ... or no progress for this long
                                                            [TALLY_CLUSTER_CATCHUP_STALL_SECONDS, default 10]
  --cluster-rebuild-stall-seconds N a rebuild (snapshot transfer, reopen) without progress for this
                                  long starts again         [TALLY_CLUSTER_REBUILD_STALL_SECONDS, default 300]
`

export interface ServeSettings {
  readonly dataDirectory: string
  readonly host: string
  readonly port: number
  /** undefined: keep the data directory's own (the default for a new one). */
  readonly cacheRotationThreshold: number | undefined
  readonly cacheGenerationBytesMax: number | undefined
  readonly bulkElementsMax: number
  readonly bodyBytesMax: number
  readonly transport: TransportLimits
  readonly auditKeyFile?: string
  readonly auditCheckpointEntries?: number
  readonly checkpointEntries?: number
  readonly walRetainEntries?: number
  readonly walRetainBytes?: number
  readonly walSegmentBytesMax?: number
  readonly walPreallocateBytes?: number
  /** Room for read answers kept between writes (undefined: the default; 0: none kept). */
  readonly answerCacheBytes?: number
  /** An event-loop delay this long is logged and counted as a stall (undefined: the default). */
  readonly loopStallMs?: number
  /** Debug, from `TALLY_LATENCY_TRACE` only: write a timeline of the server's steps here at shutdown (docs/performance.md, "Latency at half load: what the slow requests wait for"). */
  readonly latencyTraceFile?: string
  readonly auditCheckpointFile?: string
  readonly logLevel: string
  readonly tls?: { readonly certFile: string; readonly keyFile: string }
  readonly auth?: AuthSettings
  /** Cluster mode; absent: the embedded single node. */
  readonly cluster?: ClusterSettings
}

export interface ClusterSettings {
  readonly url: string
  readonly endpoints: readonly string[]
  readonly prefix: string
  readonly nodeId: ReplicaId
  readonly peerHost: string
  readonly peerPort: number
  /** The peer address registered in etcd (`--peer-advertise`); absent: the bound peer address. */
  readonly peerAdvertise?: { readonly host: string; readonly port: number }
  /** The HTTP address registered in etcd (`--advertise`); absent: the bound HTTP address. */
  readonly advertise?: string
  readonly size: number
  readonly durability: DurabilityMode
  readonly leaseTtlSeconds: number
  readonly writeDeadlineMs: number
  readonly peerBackoffMsMin: number
  readonly peerBackoffMsMax: number
  /** The primary's recovery limits given on the command line (the rest default, `recovery-runtime.ts`). */
  readonly recovery: RecoveryLimits
}

export interface AuthSettings {
  readonly clientsFile?: string
  readonly signingKeyFile?: string
  readonly externalIssuer?: string
  readonly audience: string
  readonly tokenSeconds: number
}

/** A command line or environment that cannot start a server; its message is the whole answer. */
export class ServeUsageError extends Error {}

const integerFlags = {
  'cache-rotation-threshold': 'TALLY_CACHE_ROTATION_THRESHOLD',
  'bulk-elements-max': 'TALLY_BULK_ELEMENTS_MAX',
  'body-bytes-max': 'TALLY_BODY_BYTES_MAX',
  'request-timeout-ms': 'TALLY_REQUEST_TIMEOUT_MS',
  'headers-timeout-ms': 'TALLY_HEADERS_TIMEOUT_MS',
  'idle-timeout-ms': 'TALLY_IDLE_TIMEOUT_MS',
  'connections-max': 'TALLY_CONNECTIONS_MAX',
  'shutdown-grace-ms': 'TALLY_SHUTDOWN_GRACE_MS',
  'audit-checkpoint-entries': 'TALLY_AUDIT_CHECKPOINT_ENTRIES',
  'cluster-size': 'TALLY_CLUSTER_SIZE',
  'cluster-lease-ttl-seconds': 'TALLY_CLUSTER_LEASE_TTL_SECONDS',
  'cluster-write-deadline-ms': 'TALLY_CLUSTER_WRITE_DEADLINE_MS',
  'peer-backoff-ms-min': 'TALLY_PEER_BACKOFF_MS_MIN',
  'peer-backoff-ms-max': 'TALLY_PEER_BACKOFF_MS_MAX',
  'cluster-catchup-seconds-max': 'TALLY_CLUSTER_CATCHUP_SECONDS_MAX',
  'cluster-catchup-entries-max': 'TALLY_CLUSTER_CATCHUP_ENTRIES_MAX',
  'cluster-catchup-stall-seconds': 'TALLY_CLUSTER_CATCHUP_STALL_SECONDS',
  'cluster-rebuild-stall-seconds': 'TALLY_CLUSTER_REBUILD_STALL_SECONDS',
  'checkpoint-entries': 'TALLY_CHECKPOINT_ENTRIES',
  'wal-retain-entries': 'TALLY_WAL_RETAIN_ENTRIES',
  'wal-retain-bytes': 'TALLY_WAL_RETAIN_BYTES',
  'wal-segment-bytes-max': 'TALLY_WAL_SEGMENT_BYTES_MAX',
  'wal-preallocate-bytes': 'TALLY_WAL_PREALLOCATE_BYTES',
  'loop-stall-ms': 'TALLY_LOOP_STALL_MS',
} as const
type IntegerFlag = keyof typeof integerFlags

const stringFlags = {
  'cache-generation-bytes-max': 'TALLY_CACHE_GENERATION_BYTES_MAX',
  'answer-cache-bytes': 'TALLY_ANSWER_CACHE_BYTES',
  'audit-key': 'TALLY_AUDIT_KEY',
  'audit-checkpoint-file': 'TALLY_AUDIT_CHECKPOINT_FILE',
  'log-level': 'TALLY_LOG_LEVEL',
  'tls-cert': 'TALLY_TLS_CERT',
  'tls-key': 'TALLY_TLS_KEY',
  'auth-clients': 'TALLY_AUTH_CLIENTS',
  'auth-signing-key': 'TALLY_AUTH_SIGNING_KEY',
  'auth-issuer': 'TALLY_AUTH_ISSUER',
  'auth-audience': 'TALLY_AUTH_AUDIENCE',
  'auth-token-seconds': 'TALLY_AUTH_TOKEN_SECONDS',
  cluster: 'TALLY_CLUSTER',
  'node-id': 'TALLY_NODE_ID',
  'peer-listen': 'TALLY_PEER_LISTEN',
  'peer-advertise': 'TALLY_PEER_ADVERTISE',
  advertise: 'TALLY_ADVERTISE',
  durability: 'TALLY_DURABILITY',
} as const
type StringFlag = keyof typeof stringFlags

export function parseServeArgs(argv: string[], env: NodeJS.ProcessEnv): ServeSettings | 'help' {
  let values: Record<string, string | boolean | undefined>
  try {
    ;({ values } = parseArgs({
      args: argv,
      options: {
        data: { type: 'string' },
        listen: { type: 'string' },
        ...Object.fromEntries([...Object.keys(integerFlags), ...Object.keys(stringFlags)].map((flag) => [flag, { type: 'string' as const }])),
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }))
  } catch (error) {
    throw new ServeUsageError((error as Error).message)
  }
  if (values.help === true) return 'help'
  const given = (flag: IntegerFlag | StringFlag): { value: string; source: string } | undefined => {
    const fromFlag = values[flag]
    if (typeof fromFlag === 'string') return { value: fromFlag, source: `--${flag}` }
    const variable = flag in integerFlags ? integerFlags[flag as IntegerFlag] : stringFlags[flag as StringFlag]
    const fromEnv = env[variable]
    return fromEnv === undefined || fromEnv === '' ? undefined : { value: fromEnv, source: `${variable} (--${flag})` }
  }
  const optionalInteger = (flag: IntegerFlag): number | undefined => {
    const found = given(flag)
    return found === undefined ? undefined : positiveInteger(found.value, 0, found.source)
  }
  const integer = (flag: IntegerFlag, fallback: number): number => optionalInteger(flag) ?? fallback
  // 0 is meaningful here: no zeros written ahead.
  const preallocate = given('wal-preallocate-bytes')
  const bytes = given('cache-generation-bytes-max')
  // 0 is meaningful here too: no answer kept.
  const answerBytes = given('answer-cache-bytes')
  const auditKey = given('audit-key')
  const auditEntries = optionalInteger('audit-checkpoint-entries')
  const auditFile = given('audit-checkpoint-file')
  if (auditKey === undefined && (auditEntries !== undefined || auditFile !== undefined)) {
    throw new ServeUsageError('--audit-checkpoint-entries and --audit-checkpoint-file need --audit-key')
  }
  const listenFlag = values.listen
  const listen = typeof listenFlag === 'string' ? listenFlag : (env.TALLY_LISTEN ?? '127.0.0.1:3068')
  const listenSource = typeof listenFlag === 'string' ? '--listen' : 'TALLY_LISTEN (--listen)'
  const match = /^(.+):(\d{1,5})$/.exec(listen)
  if (match === null) throw new ServeUsageError(`${listenSource}: expected HOST:PORT, got ${JSON.stringify(listen)}`)
  const port = Number(match[2])
  if (port > 65535) throw new ServeUsageError(`${listenSource}: port ${port} out of range 0..65535`)
  const bulkElementsMax = integer('bulk-elements-max', 10_000)
  const transport: TransportLimits = {
    requestTimeoutMs: integer('request-timeout-ms', transportLimitsDefault.requestTimeoutMs),
    headersTimeoutMs: integer('headers-timeout-ms', transportLimitsDefault.headersTimeoutMs),
    idleTimeoutMs: integer('idle-timeout-ms', transportLimitsDefault.idleTimeoutMs),
    connectionsMax: integer('connections-max', transportLimitsDefault.connectionsMax),
    shutdownGraceMs: integer('shutdown-grace-ms', transportLimitsDefault.shutdownGraceMs),
  }
  if (transport.headersTimeoutMs > transport.requestTimeoutMs) {
    throw new ServeUsageError(`--headers-timeout-ms (${transport.headersTimeoutMs}) must not exceed --request-timeout-ms (${transport.requestTimeoutMs})`)
  }
  const host = (match[1] as string).replace(/^\[(.*)\]$/, '$1')
  const tls = tlsSettings(values, env)
  const auth = authSettings(values, env)
  // As Formance v3: a token sent in clear text beyond this machine is a token given away.
  if (auth !== undefined && tls === undefined && !isLoopback(host)) {
    throw new ServeUsageError(`authentication on ${host}, which is not a loopback address, needs TLS (--tls-cert and --tls-key)`)
  }
  const logLevel = given('log-level')
  const loopStallMs = optionalInteger('loop-stall-ms')
  // The watch ticks every 20 ms: a threshold near it would report scheduling jitter as stalls.
  if (loopStallMs !== undefined && loopStallMs < loopStallMsMin) throw new ServeUsageError(`--loop-stall-ms: at least ${loopStallMsMin} ms`)
  const dataFlag = values.data
  const cluster = clusterSettings(given, optionalInteger)
  return {
    ...(cluster === undefined ? {} : { cluster }),
    ...(tls === undefined ? {} : { tls }),
    ...(auth === undefined ? {} : { auth }),
    dataDirectory: path.resolve(typeof dataFlag === 'string' ? dataFlag : (env.TALLY_DATA ?? 'data')),
    host,
    port,
    cacheRotationThreshold: optionalInteger('cache-rotation-threshold'),
    cacheGenerationBytesMax: bytes === undefined ? undefined : byteSize(bytes.value, bytes.source),
    bulkElementsMax,
    bodyBytesMax: integer('body-bytes-max', bodyBytesMaxFor(bulkElementsMax)),
    transport,
    ...(auditKey === undefined ? {} : { auditKeyFile: path.resolve(auditKey.value) }),
    ...(auditEntries === undefined ? {} : { auditCheckpointEntries: auditEntries }),
    ...(optionalInteger('checkpoint-entries') === undefined ? {} : { checkpointEntries: optionalInteger('checkpoint-entries') as number }),
    ...(optionalInteger('wal-retain-entries') === undefined ? {} : { walRetainEntries: optionalInteger('wal-retain-entries') as number }),
    ...(optionalInteger('wal-retain-bytes') === undefined ? {} : { walRetainBytes: optionalInteger('wal-retain-bytes') as number }),
    ...(optionalInteger('wal-segment-bytes-max') === undefined ? {} : { walSegmentBytesMax: optionalInteger('wal-segment-bytes-max') as number }),
    ...(preallocate === undefined ? {} : { walPreallocateBytes: preallocate.value === '0' ? 0 : positiveInteger(preallocate.value, 0, preallocate.source) }),
    ...(loopStallMs === undefined ? {} : { loopStallMs }),
    ...(env.TALLY_LATENCY_TRACE === undefined || env.TALLY_LATENCY_TRACE === '' ? {} : { latencyTraceFile: path.resolve(env.TALLY_LATENCY_TRACE) }),
    ...(answerBytes === undefined ? {} : { answerCacheBytes: answerBytes.value === '0' ? 0 : byteSize(answerBytes.value, answerBytes.source) }),
    ...(auditFile === undefined ? {} : { auditCheckpointFile: path.resolve(auditFile.value) }),
    logLevel: logLevelOf(logLevel?.value ?? 'info'),
  }
}

type Given = (flag: IntegerFlag | StringFlag) => { value: string; source: string } | undefined

/** The cluster flags go together: --cluster needs --node-id and --peer-listen; they mean nothing without it. */
function clusterSettings(given: Given, optionalInteger: (flag: IntegerFlag) => number | undefined): ClusterSettings | undefined {
  const url = given('cluster')
  const dependent = (
    [
      'node-id',
      'peer-listen',
      'peer-advertise',
      'advertise',
      'durability',
      'cluster-size',
      'cluster-lease-ttl-seconds',
      'cluster-write-deadline-ms',
      'peer-backoff-ms-min',
      'peer-backoff-ms-max',
      'cluster-catchup-seconds-max',
      'cluster-catchup-entries-max',
      'cluster-catchup-stall-seconds',
      'cluster-rebuild-stall-seconds',
    ] as const
  ).filter((flag) => given(flag) !== undefined)
  if (url === undefined) {
    if (dependent.length > 0) throw new ServeUsageError(`${dependent.map((flag) => `--${flag}`).join(', ')} need --cluster`)
    return undefined
  }
  let parsed: { endpoints: string[]; prefix: string }
  try {
    parsed = parseClusterUrl(url.value)
  } catch (error) {
    throw new ServeUsageError(`${url.source}: ${(error as Error).message}`)
  }
  const nodeId = given('node-id')
  if (nodeId === undefined) throw new ServeUsageError('--cluster needs --node-id (a stable name for this node)')
  if (!isNodeId(nodeId.value)) throw new ServeUsageError(`${nodeId.source}: expected 1 to 64 letters, digits, '.', '_' or '-', got ${JSON.stringify(nodeId.value.slice(0, 80))}`)
  const peer = given('peer-listen')
  if (peer === undefined) throw new ServeUsageError('--cluster needs --peer-listen HOST:PORT (where replicas take the WAL)')
  // Port 0 binds a free port, and the bound one is registered (a restart registers its new one).
  const peerAddress = parsePeerAddress(peer.value, { portZero: true })
  if (peerAddress === undefined) throw new ServeUsageError(`${peer.source}: expected HOST:PORT, got ${JSON.stringify(peer.value.slice(0, 80))}`)
  const advertised = (flag: 'peer-advertise' | 'advertise'): { host: string; port: number } | undefined => {
    const found = given(flag)
    if (found === undefined) return undefined
    const address = parsePeerAddress(found.value)
    // Registered for others to dial: a wildcard or port 0 would name no reachable place.
    if (address === undefined || address.port === 0 || address.host === '0.0.0.0' || address.host === '::') throw new ServeUsageError(`${found.source}: expected a HOST:PORT other nodes can dial (no wildcard host, no port 0), got ${JSON.stringify(found.value.slice(0, 80))}`)
    return address
  }
  const peerAdvertise = advertised('peer-advertise')
  const advertise = advertised('advertise')
  const size = optionalInteger('cluster-size') ?? 3
  if (size > 64) throw new ServeUsageError('--cluster-size: at most 64 members')
  const durabilityGiven = given('durability')
  const durability = durabilityGiven === undefined ? (size >= 3 ? 'sync_quorum' : 'sync_all') : durabilityModes.find((mode) => mode === durabilityGiven.value)
  if (durability === undefined) throw new ServeUsageError(`${durabilityGiven?.source ?? '--durability'}: expected one of ${durabilityModes.join(', ')}, got ${JSON.stringify(durabilityGiven?.value)}`)
  try {
    validateDurability(durability, size)
  } catch (error) {
    throw new ServeUsageError(`--durability ${durability} with --cluster-size ${size}: ${(error as Error).message}`)
  }
  const leaseTtlSeconds = optionalInteger('cluster-lease-ttl-seconds') ?? 3
  if (leaseTtlSeconds > 60) throw new ServeUsageError('--cluster-lease-ttl-seconds: at most 60')
  const writeDeadlineMs = optionalInteger('cluster-write-deadline-ms') ?? 5_000
  if (writeDeadlineMs < 1 || writeDeadlineMs > 600_000) throw new ServeUsageError('--cluster-write-deadline-ms: 1 to 600000')
  const peerBackoffMsMin = optionalInteger('peer-backoff-ms-min') ?? 50
  const peerBackoffMsMax = optionalInteger('peer-backoff-ms-max') ?? 5_000
  if (peerBackoffMsMin < 1 || peerBackoffMsMax < peerBackoffMsMin || peerBackoffMsMax > 600_000) throw new ServeUsageError('--peer-backoff-ms-min/--peer-backoff-ms-max: 1 ≤ MIN ≤ MAX ≤ 600000')
  const recovery: RecoveryLimits = {
    catchUpSecondsMax: optionalInteger('cluster-catchup-seconds-max'),
    catchUpEntriesMax: optionalInteger('cluster-catchup-entries-max'),
    catchUpStallSeconds: optionalInteger('cluster-catchup-stall-seconds'),
    rebuildStallSeconds: optionalInteger('cluster-rebuild-stall-seconds'),
  }
  for (const [name, seconds] of [['cluster-catchup-seconds-max', recovery.catchUpSecondsMax], ['cluster-catchup-stall-seconds', recovery.catchUpStallSeconds], ['cluster-rebuild-stall-seconds', recovery.rebuildStallSeconds]] as const) {
    if (seconds !== undefined && seconds > recoverySecondsMax) throw new ServeUsageError(`--${name}: at most ${recoverySecondsMax}`)
  }
  return {
    url: url.value,
    endpoints: parsed.endpoints,
    prefix: parsed.prefix,
    nodeId: nodeId.value as ReplicaId,
    peerHost: peerAddress.host,
    peerPort: peerAddress.port,
    ...(peerAdvertise === undefined ? {} : { peerAdvertise }),
    ...(advertise === undefined ? {} : { advertise: formatAddress(advertise) }),
    size,
    durability,
    leaseTtlSeconds,
    writeDeadlineMs,
    peerBackoffMsMin,
    peerBackoffMsMax,
    recovery,
  }
}

function logLevelOf(value: string): string {
  try {
    return parseLogLevel(value)
  } catch (error) {
    throw new ServeUsageError((error as Error).message)
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
  if (certFile === undefined || keyFile === undefined) throw new ServeUsageError('--tls-cert and --tls-key go together')
  return { certFile: path.resolve(certFile), keyFile: path.resolve(keyFile) }
}

function authSettings(values: FlagValues, env: NodeJS.ProcessEnv): AuthSettings | undefined {
  const clientsFile = pickFlag(values, env, 'auth-clients', 'TALLY_AUTH_CLIENTS')
  const signingKeyFile = pickFlag(values, env, 'auth-signing-key', 'TALLY_AUTH_SIGNING_KEY')
  const externalIssuer = pickFlag(values, env, 'auth-issuer', 'TALLY_AUTH_ISSUER')
  const audience = pickFlag(values, env, 'auth-audience', 'TALLY_AUTH_AUDIENCE')
  const tokenSeconds = pickFlag(values, env, 'auth-token-seconds', 'TALLY_AUTH_TOKEN_SECONDS')
  if (clientsFile === undefined && externalIssuer === undefined) {
    if (signingKeyFile !== undefined || audience !== undefined || tokenSeconds !== undefined) throw new ServeUsageError('--auth-signing-key, --auth-audience and --auth-token-seconds need --auth-clients or --auth-issuer')
    return undefined
  }
  if (externalIssuer !== undefined && !/^https?:\/\/[^\s]+$/.test(externalIssuer)) throw new ServeUsageError(`--auth-issuer: expected an http(s) URL, got ${JSON.stringify(externalIssuer)}`)
  const seconds = positiveInteger(tokenSeconds, tokenSecondsDefault, '--auth-token-seconds')
  if (seconds > 86_400) throw new ServeUsageError('--auth-token-seconds: at most 86400 (tokens are meant to be short-lived)')
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


function positiveInteger(value: string | undefined, fallback: number, source: string): number {
  if (value === undefined) return fallback
  if (!/^[1-9][0-9]{0,9}$/.test(value) || !Number.isSafeInteger(Number(value)) || Number(value) > 2 ** 31 - 1) {
    throw new ServeUsageError(`${source}: expected a positive integer below 2^31, got ${JSON.stringify(value)}`)
  }
  return Number(value)
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
export function byteSize(value: string, source: string): number {
  const match = /^([1-9][0-9]{0,12})\s*([a-zA-Z]*)$/.exec(value)
  const unit = match === null ? undefined : byteUnits.get((match[2] as string).toLowerCase())
  if (match === null || unit === undefined) throw new ServeUsageError(`${source}: expected a byte count such as 67108864 or 64MiB, got ${JSON.stringify(value)}`)
  const bytes = Number(match[1]) * unit
  if (!Number.isSafeInteger(bytes) || bytes < 1024) throw new ServeUsageError(`${source}: expected at least 1KiB, got ${JSON.stringify(value)}`)
  return bytes
}

// ---- startup failures: one line, what is wrong and what to do ------------------------

interface SystemErrorLike {
  readonly code?: string
  readonly syscall?: string
  readonly path?: string
  readonly message: string
  readonly cause?: unknown
}

/** The error and its causes, outermost first (RocksDB wraps the reason a store would not open). */
function causeChain(error: unknown): SystemErrorLike[] {
  const chain: SystemErrorLike[] = []
  for (let current = error; current instanceof Error && chain.length < 8; current = (current as SystemErrorLike).cause) {
    chain.push(current as SystemErrorLike)
  }
  return chain
}

/** Why `tally serve` could not start, said so an operator knows what to change. */
export function describeStartupFailure(error: unknown, settings: Pick<ServeSettings, 'dataDirectory' | 'host' | 'port'>): string {
  const chain = causeChain(error)
  const codes = new Set(chain.map((entry) => entry.code))
  const data = settings.dataDirectory
  const address = `${settings.host}:${settings.port}`
  const system = chain.find((entry) => entry.syscall !== undefined)
  if (codes.has('EADDRINUSE')) return `port ${settings.port} on ${settings.host} is already in use (another tally or another server); stop it or choose another --listen`
  if (system?.syscall === 'listen' || system?.syscall === 'bind' || codes.has('ENOTFOUND') || codes.has('EAI_AGAIN')) {
    if (codes.has('EACCES')) return `not allowed to listen on ${address} (ports below 1024 need privileges); choose another --listen`
    if (codes.has('EADDRNOTAVAIL')) return `${settings.host} is not an address of this machine; choose another --listen`
    if (codes.has('ENOTFOUND') || codes.has('EAI_AGAIN')) return `cannot resolve host ${JSON.stringify(settings.host)}; choose another --listen`
    return `cannot listen on ${address}: ${system?.message ?? (error as Error).message}; choose another --listen`
  }
  if (codes.has('LEVEL_LOCKED')) return `data directory ${data} is in use by another tally process (or tool); stop it, or give this one another --data`
  if (codes.has('ENOTDIR') || codes.has('EEXIST')) return `data directory ${data} is not a directory (it, or a parent, is a file); choose another --data`
  if (codes.has('EACCES') || codes.has('EPERM') || codes.has('EROFS')) {
    return `data directory ${data} is not writable (${system?.code ?? 'EACCES'} on ${system?.path ?? data}); fix its permissions or choose another --data`
  }
  if (codes.has('ENOSPC')) return `no space left on the device holding ${data}; free some space or choose another --data`
  const first = chain[0]
  return `cannot start with data directory ${data}: ${first === undefined ? String(error) : first.message.split('\n')[0]}`
}

/** Fails as binding would, without holding the port: checked before the data directory is touched. */
async function checkPortFree(host: string, port: number): Promise<void> {
  if (port === 0) return
  const probe = net.createServer()
  await new Promise<void>((resolve, reject) => {
    probe.once('error', reject)
    probe.listen({ host, port, exclusive: true }, () => resolve())
  })
  await new Promise<void>((resolve) => probe.close(() => resolve()))
}

/** Creates the data directory and proves it writable, so a bad one is named before the store opens. */
function prepareDataDirectory(directory: string): void {
  mkdirSync(directory, { recursive: true })
  accessSync(directory, constants.W_OK | constants.X_OK)
}

export async function serveCommand(argv: string[]): Promise<number> {
  const fail = (message: string): number => {
    process.stderr.write(`tally serve: ${message}\n`)
    return 1
  }
  let settings: ServeSettings | 'help'
  try {
    settings = parseServeArgs(argv, process.env)
  } catch (error) {
    if (!(error instanceof ServeUsageError)) throw error
    return fail(`${error.message}; see tally serve --help`)
  }
  if (settings === 'help') {
    process.stdout.write(usage)
    return 0
  }
  // Off a terminal, the lines of a turn are written together; the last ones before an exit still go out.
  const lines = process.stderr.isTTY ? undefined : linesPerTurn(process.stderr)
  if (lines !== undefined) process.once('exit', () => lines.flush())
  const logStream = lines ?? prettyLines(process.stderr)
  const log = nodeLogLines({ level: settings.logLevel, stream: logStream })
  let auditCheckpoints: AuditCheckpointSettings | undefined
  try {
    auditCheckpoints =
      settings.auditKeyFile === undefined
        ? undefined
        : loadAuditCheckpointSettings({ dataDirectory: settings.dataDirectory, keyFile: settings.auditKeyFile, appendFile: settings.auditCheckpointFile, entriesMax: settings.auditCheckpointEntries })
  } catch (error) {
    if (!(error instanceof AuditKeyError)) throw error
    return fail(error.message)
  }
  let security: Pick<ApiOptions, 'tls' | 'auth'>
  try {
    security = await loadSecurity(settings)
  } catch (error) {
    return fail((error as Error).message)
  }
  const cluster = settings.cluster
  let control: EtcdControlPlane | undefined
  let clusterId: string | undefined
  if (cluster !== undefined) {
    // The cluster id comes first: a data directory of another cluster is refused before it serves anything.
    control = EtcdControlPlane.connect({ endpoints: cluster.endpoints, prefix: cluster.prefix })
    try {
      clusterId = await sharedClusterId(control)
    } catch (error) {
      control.close()
      return fail(error instanceof ControlPlaneUnavailable ? error.message : `cannot read the cluster id from ${cluster.url}: ${(error as Error).message}`)
    }
  }
  // A replica that staged a snapshot reopens in place: everything below runs again on the same ports with the image
  // installed first (docs/cluster.md, "Snapshots and rebuild"); the control plane and the settings stay.
  const signals: { handlers: boolean; received: string | undefined; stop: ((why: string) => void) | undefined } = { handlers: false, received: undefined, stop: undefined }
  // The ports a reopen binds again: the bound ones, so that `--listen`/`--peer-listen` port 0 keeps its address.
  type Ports = { readonly http: number; readonly peer: number | undefined }
  const serveOnce = async (ports: Ports): Promise<{ readonly code: number } | { readonly reopenOn: Ports }> => {
    const port = ports.http
    let node: LedgerNode
    try {
      await checkPortFree(settings.host, port)
      prepareDataDirectory(settings.dataDirectory)
      // A replica rebuilt from a snapshot: the image its replica server staged is installed before the node opens (docs/cluster.md).
      if (cluster !== undefined && clusterId !== undefined) await installStagedSnapshot({ dataDirectory: settings.dataDirectory, clusterId, log })
      log(`opening ${settings.dataDirectory}`)
      node = await LedgerNode.open({
        dataDirectory: settings.dataDirectory,
        ...(cluster === undefined || clusterId === undefined ? {} : { clusterId, replicated: { nodeId: cluster.nodeId, canAcknowledge: () => gate.canAcknowledge() } }),
        ...(settings.cacheRotationThreshold === undefined ? {} : { cacheRotationThreshold: settings.cacheRotationThreshold }),
        ...(settings.cacheGenerationBytesMax === undefined ? {} : { cacheGenerationBytesMax: settings.cacheGenerationBytesMax }),
        ...(settings.checkpointEntries === undefined ? {} : { checkpointEntries: settings.checkpointEntries }),
        ...(settings.walRetainEntries === undefined ? {} : { walRetainEntries: settings.walRetainEntries }),
        ...(settings.walRetainBytes === undefined ? {} : { walRetainBytes: settings.walRetainBytes }),
        ...(settings.walSegmentBytesMax === undefined ? {} : { walSegmentBytesMax: settings.walSegmentBytesMax }),
        ...(settings.walPreallocateBytes === undefined ? {} : { walPreallocateBytes: settings.walPreallocateBytes }),
        log,
        ...(auditCheckpoints === undefined ? {} : { auditCheckpoints }),
      })
    } catch (error) {
      control?.close()
      // A history rewritten while the server was down says itself what to do.
      return { code: fail(error instanceof AuditHistoryRewritten ? error.message : describeStartupFailure(error, settings)) }
    }
    if (clusterId !== undefined && node.clusterId !== clusterId) {
      await node.close()
      control?.close()
      return { code: fail(`data directory ${settings.dataDirectory} belongs to cluster ${node.clusterId}, but etcd at ${cluster?.url ?? ''} holds cluster ${clusterId}; give this node an empty --data`) }
    }
    if (auditCheckpoints === undefined) log('audit: no --audit-key: no signed checkpoints (the audit chain alone proves nothing to a holder of the store)')
    let runtime: ClusterNode | undefined
    const gate = new AcknowledgementGate()
    const app = await buildApi(node, {
      ...(cluster === undefined ? {} : { clusterRuntime: () => runtime?.statusView() }),
      bulkElementsMax: settings.bulkElementsMax,
      bodyBytesMax: settings.bodyBytesMax,
      transport: settings.transport,
      ...(settings.loopStallMs === undefined ? {} : { loopStallThresholdMs: settings.loopStallMs }),
      ...(settings.latencyTraceFile === undefined ? {} : { latencyTraceFile: settings.latencyTraceFile }),
      ...(settings.answerCacheBytes === undefined ? {} : { answerCacheBytes: settings.answerCacheBytes }),
      logger: { level: settings.logLevel, stream: logStream },
      ...security,
    })
    let requestReopen: (() => void) | undefined
    let stagedBeforeListening = false
    if (cluster !== undefined) {
      forwardWritesToPrimary(app, { nodeId: cluster.nodeId, primaryAddress: () => (runtime?.role === 'replica' ? runtime.primaryHttpAddress() : undefined), refusal: () => runtime?.writeRefusal(), scheme: security.tls === undefined ? 'http' : 'https' })
    }
    try {
      await app.listen({ host: settings.host, port })
    } catch (error) {
      // Taken between the check and now: close what was opened, then say so.
      await app.close()
      await node.close()
      control?.close()
      return { code: fail(describeStartupFailure(error, settings)) }
    }
    if (cluster !== undefined && control !== undefined) {
      const bound = app.server.address()
      const httpAddress = cluster.advertise ?? (typeof bound === 'object' && bound !== null ? formatAddress({ host: bound.address, port: bound.port }) : `${settings.host}:${settings.port}`)
      try {
        runtime = await ClusterNode.start({
          control,
          node,
          gate,
          nodeId: cluster.nodeId,
          peerListen: { host: cluster.peerHost, port: ports.peer ?? cluster.peerPort },
          ...(cluster.peerAdvertise === undefined ? {} : { peerAdvertise: cluster.peerAdvertise }),
          httpAddress,
          leaseTtlSeconds: cluster.leaseTtlSeconds,
          writeDeadlineMs: cluster.writeDeadlineMs,
          link: { backoffMsMin: cluster.peerBackoffMsMin, backoffMsMax: cluster.peerBackoffMsMax },
          recovery: recoveryTuningFrom(cluster.recovery),
          bootstrap: { members: cluster.size, durability: cluster.durability },
          ...(settings.checkpointEntries === undefined ? {} : { snapshotEveryEntries: settings.checkpointEntries }),
          // The replica server staged a snapshot: the node closes, installs the image and reopens on the same ports.
          onSnapshotStaged: () => {
            if (requestReopen === undefined) stagedBeforeListening = true
            else requestReopen()
          },
          log,
        })
      } catch (error) {
        await app.close()
        await node.close()
        control.close()
        const message = (error as Error).message
        return { code: fail(/EADDRINUSE/.test(message) || (error as { code?: string }).code === 'EADDRINUSE' ? `peer port ${ports.peer ?? cluster.peerPort} on ${cluster.peerHost} is already in use; choose another --peer-listen` : `cannot join the cluster at ${cluster.url}: ${message}`) }
      }
      // After a rebuild's reopen at warn, beside the lines that announced it: the same addresses as before it.
      log(`cluster: node ${cluster.nodeId} of cluster ${node.clusterId}, peer address ${formatAddress(runtime.peerAddress)}${cluster.peerAdvertise === undefined ? '' : ` (advertised ${formatAddress(cluster.peerAdvertise)})`}, http ${httpAddress}${ports.peer === undefined ? '' : ' (reopened after the rebuild)'}`, ports.peer === undefined ? {} : { level: 'warn' })
    }
    return new Promise<{ readonly code: number } | { readonly reopenOn: Ports }>((resolve) => {
      let stopping = false
      const address = app.server.address()
      const boundPort = typeof address === 'object' && address !== null ? address.port : port
      const boundPeer = runtime?.peerAddress
      const stop = (signal: string, reopen: boolean): void => {
        if (stopping) return
        stopping = true
        signals.stop = undefined
        if (reopen) log(`${signal}: closing to install it, then reopening on the same ports${boundPeer === undefined ? '' : ` (peer address ${formatAddress(boundPeer)})`}`, { level: 'warn' })
        else log(`${signal}: draining and shutting down`)
        app
          .close()
          .then(() => runtime?.stop())
          .then(() => node.close())
          .then(() => (reopen ? undefined : control?.close()))
          .then(() => {
            if (reopen) log('closed for the rebuild: installing the staged snapshot and reopening', { level: 'warn' })
            else log('stopped cleanly')
            resolve(reopen ? { reopenOn: { http: boundPort, peer: boundPeer?.port } } : { code: 0 })
          })
          .catch((error: unknown) => {
            log(`shutdown failed: ${String(error)}`, { level: 'error' })
            control?.close()
            resolve({ code: 1 })
          })
      }
      // Before announcing the address: a supervisor may signal as soon as it reads it.
      requestReopen = () => stop('snapshot staged for a rebuild', true)
      signals.stop = (why) => stop(why, false)
      if (signals.handlers === false) {
        signals.handlers = true
        process.once('SIGTERM', () => (signals.stop === undefined ? (signals.received = 'SIGTERM') : signals.stop('SIGTERM')))
        process.once('SIGINT', () => (signals.stop === undefined ? (signals.received = 'SIGINT') : signals.stop('SIGINT')))
      }
      const bound = typeof address === 'object' && address !== null ? `${address.address}:${address.port}` : String(address)
      const scheme = security.tls === undefined ? 'http' : 'https'
      log(`tally listening on ${scheme}://${bound} (applied index ${node.fsm.appliedIndex})`, { auth: security.auth === undefined ? 'off' : 'on', tls: security.tls === undefined ? 'off' : 'on' })
      if (security.auth === undefined && !isLoopback(settings.host)) log(`no --auth-clients on ${settings.host}: anyone who reaches the port can move money`, { level: 'warn' })
      process.stdout.write(`listening ${bound}\n`)
      // A signal that came while the node was reopening ends it now; else a snapshot staged before listening reopens it.
      if (signals.received !== undefined) stop(signals.received, false)
      else if (stagedBeforeListening) requestReopen()
    })
  }
  let ports: Ports = { http: settings.port, peer: undefined }
  for (;;) {
    const outcome = await serveOnce(ports)
    if ('code' in outcome) return outcome.code
    ports = outcome.reopenOn
  }
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
