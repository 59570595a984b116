import type { Writable } from 'node:stream'
import type { ExporterConfiguration } from './config.ts'

/**
 * One batch of a ledger's logs on its way out: each log is its stored v2
 * JSON text (with its `id`, so a consumer can deduplicate replays), in id
 * order.
 */
export interface LogBatch {
  readonly ledger: string
  readonly pipelineID: string
  readonly logs: readonly string[]
}

/** A sink confirms a batch by resolving; a rejection leaves the cursor where it was. */
export interface Sink {
  deliver(batch: LogBatch, signal: AbortSignal): Promise<void>
}

/** Where the stdout driver writes (the process's stdout unless a test gives another stream). */
export interface SinkEnvironment {
  readonly stdout: Writable
}

export function sinkOf(configuration: ExporterConfiguration, environment: SinkEnvironment): Sink {
  return configuration.driver === 'stdout' ? new StdoutSink(environment.stdout) : new HttpSink(configuration.config.url, configuration.config.timeoutMs)
}

/** JSON lines `{"ledger","pipelineID","log"}`; confirmed once the stream took the bytes. */
class StdoutSink implements Sink {
  constructor(private readonly stream: Writable) {}

  deliver(batch: LogBatch): Promise<void> {
    const prefix = `{"ledger":${JSON.stringify(batch.ledger)},"pipelineID":${JSON.stringify(batch.pipelineID)},"log":`
    const text = batch.logs.map((log) => `${prefix}${log}}\n`).join('')
    return new Promise((resolve, reject) => {
      this.stream.write(text, (error) => (error ? reject(error) : resolve()))
    })
  }
}

/**
 * One POST per batch: `{"ledger","pipelineID","logs":[…]}`. A 2xx confirms
 * it; anything else, a network error or no answer within the timeout fails
 * it (the pipeline retries with backoff).
 */
class HttpSink implements Sink {
  constructor(
    private readonly url: string,
    private readonly timeoutMs: number,
  ) {}

  async deliver(batch: LogBatch, signal: AbortSignal): Promise<void> {
    // The logs are spliced in as stored: amounts beyond 2^53 stay exact without a parse.
    const body = `{"ledger":${JSON.stringify(batch.ledger)},"pipelineID":${JSON.stringify(batch.pipelineID)},"logs":[${batch.logs.join(',')}]}`
    const response = await fetch(this.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
      signal: AbortSignal.any([signal, AbortSignal.timeout(this.timeoutMs)]),
    })
    // The answer's body is not used: dropped unread, so a sink cannot make the node hold a large one.
    await response.body?.cancel().catch(() => undefined)
    if (response.status < 200 || response.status > 299) throw new Error(`HTTP sink answered ${response.status}`)
  }
}
