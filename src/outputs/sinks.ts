import type { Writable } from 'node:stream'
import { connect } from 'nats'
import type { JetStreamClient, NatsConnection } from 'nats'
import type { ExporterConfiguration, NatsSinkConfig } from './config.ts'

/**
 * One batch of a ledger's logs on its way out: each log is its stored v2
 * JSON text (with its `id`, so a consumer can deduplicate replays), in id
 * order.
 */
export interface LogBatch {
  readonly ledger: string
  readonly pipelineID: string
  readonly logs: readonly string[]
  /** `ids[i]` is the id of `logs[i]`. */
  readonly ids: readonly bigint[]
}

/** A sink confirms a batch by resolving; a rejection leaves the cursor where it was. */
export interface Sink {
  deliver(batch: LogBatch, signal: AbortSignal): Promise<void>
  /** Lets go of what the sink holds open (a connection); a later `deliver` opens it again. */
  close(): Promise<void>
}

/** Where the stdout driver writes (the process's stdout unless a test gives another stream). */
export interface SinkEnvironment {
  readonly stdout: Writable
}

export function sinkOf(configuration: ExporterConfiguration, environment: SinkEnvironment): Sink {
  switch (configuration.driver) {
    case 'stdout':
      return new StdoutSink(environment.stdout)
    case 'http':
      return new HttpSink(configuration.config.url, configuration.config.timeoutMs)
    case 'nats':
      return new NatsSink(configuration.config)
  }
}

/** The one form of a log on a line or in a message: `{"ledger","pipelineID","log"}`, the log spliced in as stored. */
function logEnvelope(batch: LogBatch, log: string): string {
  return `{"ledger":${JSON.stringify(batch.ledger)},"pipelineID":${JSON.stringify(batch.pipelineID)},"log":${log}}`
}

/** JSON lines `{"ledger","pipelineID","log"}`; confirmed once the stream took the bytes. */
class StdoutSink implements Sink {
  constructor(private readonly stream: Writable) {}

  deliver(batch: LogBatch): Promise<void> {
    const text = batch.logs.map((log) => `${logEnvelope(batch, log)}\n`).join('')
    return new Promise((resolve, reject) => {
      this.stream.write(text, (error) => (error ? reject(error) : resolve()))
    })
  }

  async close(): Promise<void> {}
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

  async close(): Promise<void> {}
}

/**
 * One JetStream message per log on the configured subject, body
 * `{"ledger","pipelineID","log"}`, header `Nats-Msg-Id: {ledger}/{log id}`
 * so a batch sent again (after a failure or a crash) is dropped by the
 * stream within its duplicate window. A batch is confirmed once JetStream
 * acked every message.
 *
 * One publish is awaited before the next: the in-flight window is one
 * message. A wider window would lose order across a reconnect — a message
 * written to a dying socket is lost while the ones the client still
 * buffered reach the next connection first.
 */
class NatsSink implements Sink {
  private connection: Promise<{ readonly nats: NatsConnection; readonly jetstream: JetStreamClient }> | undefined

  constructor(private readonly config: NatsSinkConfig) {}

  async deliver(batch: LogBatch, signal: AbortSignal): Promise<void> {
    const { jetstream } = await this.open()
    // A stop must not wait out an ack that may never come: closing the connection fails the publish at once.
    const onAbort = (): void => void this.close()
    signal.addEventListener('abort', onAbort, { once: true })
    try {
      for (let i = 0; i < batch.logs.length; i++) {
        if (signal.aborted) throw new Error('the pipeline stopped')
        const log = batch.logs[i] as string
        const id = batch.ids[i] as bigint
        await jetstream.publish(this.config.subject, logEnvelope(batch, log), { msgID: `${batch.ledger}/${id}`, timeout: this.config.timeoutMs })
      }
    } finally {
      signal.removeEventListener('abort', onAbort)
    }
  }

  async close(): Promise<void> {
    const connection = this.connection
    this.connection = undefined
    if (connection === undefined) return
    const opened = await connection.catch(() => undefined)
    await opened?.nats.close().catch(() => undefined)
  }

  private open(): Promise<{ readonly nats: NatsConnection; readonly jetstream: JetStreamClient }> {
    if (this.connection === undefined) {
      const connection = this.connect()
      this.connection = connection
      // A failed connect or a connection closed for good is dropped: the next batch opens a new one.
      connection.then(
        ({ nats }) => {
          void nats.closed().then(() => {
            if (this.connection === connection) this.connection = undefined
          })
        },
        () => {
          if (this.connection === connection) this.connection = undefined
        },
      )
    }
    return this.connection
  }

  private async connect(): Promise<{ readonly nats: NatsConnection; readonly jetstream: JetStreamClient }> {
    const url = new URL(this.config.url)
    const nats = await connect({
      servers: `${url.hostname}:${url.port === '' ? '4222' : url.port}`,
      name: 'tally-pipeline',
      timeout: this.config.timeoutMs,
      // Once connected, the client reconnects for ever; publishes meanwhile time out and the pipeline backs off.
      reconnect: true,
      maxReconnectAttempts: -1,
      reconnectTimeWait: Math.min(this.config.backoffMaxMs, Math.max(this.config.backoffMinMs, 50)),
    })
    try {
      if (this.config.createStream && this.config.stream !== undefined) {
        const manager = await nats.jetstreamManager({ timeout: this.config.timeoutMs })
        const name = this.config.stream
        const exists = await manager.streams.info(name).then(
          () => true,
          (error: unknown) => {
            if (error instanceof Error && /stream not found/i.test(error.message)) return false
            throw error
          },
        )
        if (!exists) await manager.streams.add({ name, subjects: [this.config.subject] })
      }
      return { nats, jetstream: nats.jetstream({ timeout: this.config.timeoutMs }) }
    } catch (error) {
      await nats.close().catch(() => undefined)
      throw error
    }
  }
}
