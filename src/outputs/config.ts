import { validationError } from '../domain/index.ts'
import type { Json } from '../domain/index.ts'

/**
 * Exporter configurations as v2 takes them (`{driver, config}`), checked
 * once here so that stored rows and served views come from one parser.
 * ClickHouse and Elasticsearch are not drivers of this release (docs/pipelines.md).
 */
export type ExporterDriver = 'stdout' | 'http' | 'nats'

export interface HttpSinkConfig {
  readonly url: string
  /** Logs per POST (the in-flight window is one batch per pipeline). */
  readonly batchSize: number
  /** A POST not answered in this long failed and is retried. */
  readonly timeoutMs: number
  /** First retry delay; doubles per failure up to `backoffMaxMs`. */
  readonly backoffMinMs: number
  readonly backoffMaxMs: number
}

export interface StdoutSinkConfig {
  readonly batchSize: number
}

export interface NatsSinkConfig {
  /** One `nats://host:port` server; the client reconnects to it for ever. */
  readonly url: string
  /** Every log is published to this subject; a JetStream stream must capture it. */
  readonly subject: string
  /** The stream capturing `subject`: created (file storage) when absent if `createStream`. */
  readonly stream?: string
  readonly createStream: boolean
  /** Logs per batch. */
  readonly batchSize: number
  /** A publish whose ack has not come in this long failed; the batch is retried. */
  readonly timeoutMs: number
  readonly backoffMinMs: number
  readonly backoffMaxMs: number
}

export type ExporterConfiguration =
  | { readonly driver: 'stdout'; readonly config: StdoutSinkConfig }
  | { readonly driver: 'http'; readonly config: HttpSinkConfig }
  | { readonly driver: 'nats'; readonly config: NatsSinkConfig }

export const exporterDrivers: readonly ExporterDriver[] = ['stdout', 'http', 'nats']

export const batchSizeDefault = 100
export const batchSizeMax = 1000
/** A batch stops growing past this many bytes of logs (one log always goes, whatever its size). */
export const batchBytesMax = 1024 * 1024
export const httpTimeoutMsDefault = 10_000
export const backoffMinMsDefault = 100
export const backoffMaxMsDefault = 30_000
export const natsTimeoutMsDefault = 5_000

/** NATS subject tokens: no whitespace, no wildcard (a publish names one subject), no empty token. */
const natsSubjectPattern = /^[^\s.*>]+(\.[^\s.*>]+)*$/
/** JetStream stream names: no whitespace, dots, wildcards or path separators. */
const natsStreamPattern = /^[^\s.*>/\\]+$/
const natsNameLengthMax = 255

const httpKeys: ReadonlySet<string> = new Set(['url', 'batchSize', 'timeoutMs', 'backoffMinMs', 'backoffMaxMs'])
const stdoutKeys: ReadonlySet<string> = new Set(['batchSize'])
const natsKeys: ReadonlySet<string> = new Set(['url', 'subject', 'stream', 'createStream', 'batchSize', 'timeoutMs', 'backoffMinMs', 'backoffMaxMs'])

function isObject(value: unknown): value is { readonly [key: string]: Json } {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function integerIn(config: { readonly [key: string]: Json }, name: string, min: number, max: number, fallback: number): number {
  if (!Object.hasOwn(config, name)) return fallback
  const value = config[name]
  const number = typeof value === 'bigint' ? Number(value) : value
  if (typeof number !== 'number' || !Number.isInteger(number) || number < min || number > max) {
    throw validationError(`config.${name} must be an integer from ${min} to ${max}`)
  }
  return number
}

function refuseUnknownKeys(config: { readonly [key: string]: Json }, known: ReadonlySet<string>, driver: string): void {
  for (const key of Object.keys(config)) {
    if (!known.has(key)) throw validationError(`config.${key} is not a setting of the ${driver} driver (settings: ${[...known].join(', ')})`)
  }
}

/** The one parser of `{driver, config}` bodies and stored rows; defaults are filled in, so what is stored is what runs. */
export function parseExporterConfiguration(body: unknown): ExporterConfiguration {
  if (!isObject(body)) throw validationError('an exporter is an object {driver, config}')
  for (const key of Object.keys(body)) {
    if (key !== 'driver' && key !== 'config') throw validationError(`unknown field ${key} (an exporter is {driver, config})`)
  }
  const driver = body.driver
  if (driver !== 'stdout' && driver !== 'http' && driver !== 'nats') throw validationError(`driver must be one of ${exporterDrivers.join(', ')}`)
  const config = body.config ?? {}
  if (!isObject(config)) throw validationError('config must be an object')
  if (driver === 'stdout') {
    refuseUnknownKeys(config, stdoutKeys, driver)
    return { driver, config: { batchSize: integerIn(config, 'batchSize', 1, batchSizeMax, batchSizeDefault) } }
  }
  if (driver === 'nats') {
    refuseUnknownKeys(config, natsKeys, driver)
    return { driver, config: natsConfig(config) }
  }
  refuseUnknownKeys(config, httpKeys, driver)
  const url = config.url
  if (typeof url !== 'string' || url.length > 2048) throw validationError('config.url must be an http or https URL of at most 2048 characters')
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw validationError('config.url must be an http or https URL')
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw validationError('config.url must be an http or https URL')
  if (parsed.username !== '' || parsed.password !== '') throw validationError('config.url must not carry credentials (they would be served back by GET)')
  const backoffMinMs = integerIn(config, 'backoffMinMs', 1, 60_000, backoffMinMsDefault)
  const backoffMaxMs = integerIn(config, 'backoffMaxMs', backoffMinMs, 3_600_000, Math.max(backoffMinMs, backoffMaxMsDefault))
  return {
    driver,
    config: {
      url,
      batchSize: integerIn(config, 'batchSize', 1, batchSizeMax, batchSizeDefault),
      timeoutMs: integerIn(config, 'timeoutMs', 1, 600_000, httpTimeoutMsDefault),
      backoffMinMs,
      backoffMaxMs,
    },
  }
}

function natsConfig(config: { readonly [key: string]: Json }): NatsSinkConfig {
  const url = config.url
  if (typeof url !== 'string' || url.length > 2048) throw validationError('config.url must be a nats://host:port URL of at most 2048 characters')
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw validationError('config.url must be a nats://host:port URL')
  }
  if (parsed.protocol !== 'nats:' || parsed.hostname === '') throw validationError('config.url must be a nats://host:port URL')
  if (parsed.username !== '' || parsed.password !== '') throw validationError('config.url must not carry credentials (they would be served back by GET)')
  const subject = config.subject
  if (typeof subject !== 'string' || subject.length > natsNameLengthMax || !natsSubjectPattern.test(subject)) {
    throw validationError(`config.subject must be a NATS subject of at most ${natsNameLengthMax} characters, without wildcards or whitespace`)
  }
  const stream = config.stream
  if (stream !== undefined && (typeof stream !== 'string' || stream.length > natsNameLengthMax || !natsStreamPattern.test(stream))) {
    throw validationError(`config.stream must be a JetStream stream name of at most ${natsNameLengthMax} characters, without dots, wildcards, slashes or whitespace`)
  }
  const createStream = config.createStream ?? false
  if (typeof createStream !== 'boolean') throw validationError('config.createStream must be true or false')
  if (createStream && stream === undefined) throw validationError('config.createStream needs config.stream (the stream to create)')
  const backoffMinMs = integerIn(config, 'backoffMinMs', 1, 60_000, backoffMinMsDefault)
  const backoffMaxMs = integerIn(config, 'backoffMaxMs', backoffMinMs, 3_600_000, Math.max(backoffMinMs, backoffMaxMsDefault))
  return {
    url,
    subject,
    ...(stream === undefined ? {} : { stream }),
    createStream,
    batchSize: integerIn(config, 'batchSize', 1, batchSizeMax, batchSizeDefault),
    timeoutMs: integerIn(config, 'timeoutMs', 1, 600_000, natsTimeoutMsDefault),
    backoffMinMs,
    backoffMaxMs,
  }
}
