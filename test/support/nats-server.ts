import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { tempDirectory } from './temp.ts'
import { findExecutable, freePort, stopChild } from './local.ts'

/** The `nats-server` executable: on PATH, or where Debian puts it (/usr/sbin, often off a user's PATH). */
export function natsServerExecutable(): string | undefined {
  return findExecutable('nats-server', ['/usr/sbin', '/usr/local/bin'])
}

const readyDeadlineMs = 30_000


/**
 * A `nats-server -js` of the test's own: loopback, a free port, its own
 * store directory. `stop` and `start` again keep the port and the store, as
 * a broker restart does. Readiness is its "Server is ready" line, awaited
 * with a deadline.
 */
export class NatsBroker {
  private process: ChildProcess | undefined
  private readonly store = tempDirectory('tally-nats-')

  private constructor(
    private readonly executable: string,
    public port: number,
  ) {}

  get url(): string {
    return `nats://127.0.0.1:${this.port}`
  }

  static async start(executable: string): Promise<NatsBroker> {
    const broker = new NatsBroker(executable, 0)
    let failure: unknown
    for (let attempt = 0; attempt < 3; attempt++) {
      broker.port = await freePort()
      try {
        await broker.start()
        return broker
      } catch (error) {
        failure = error
      }
    }
    broker.store.remove()
    throw failure
  }

  /** Starts the broker (again) on its port and store. */
  start(): Promise<void> {
    if (this.process !== undefined) throw new Error('the broker is running')
    const child = spawn(this.executable, ['-a', '127.0.0.1', '-p', String(this.port), '-js', '-sd', this.store.directory], { stdio: ['ignore', 'ignore', 'pipe'] })
    this.process = child
    let output = ''
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => finish(new Error(`nats-server not ready in ${readyDeadlineMs} ms:\n${output}`)), readyDeadlineMs)
      const onData = (chunk: Buffer): void => {
        output = (output + chunk.toString('utf8')).slice(-8192)
        if (output.includes('Server is ready')) finish(undefined)
      }
      const onExit = (code: number | null): void => {
        if (this.process === child) this.process = undefined
        finish(new Error(`nats-server exited (${code}) before it was ready:\n${output}`))
      }
      const finish = (error: Error | undefined): void => {
        clearTimeout(timer)
        child.stderr?.off('data', onData)
        child.off('exit', onExit)
        if (error === undefined) {
          // Keep draining its log so a full pipe never blocks it.
          child.stderr?.resume()
          resolve()
        } else {
          child.kill('SIGKILL')
          reject(error)
        }
      }
      child.stderr?.on('data', onData)
      child.on('exit', onExit)
      child.on('error', (error) => finish(error))
    })
  }

  /** Stops the broker (SIGTERM: JetStream flushes its store) and waits for it to exit. */
  async stop(): Promise<void> {
    const child = this.process
    this.process = undefined
    await stopChild(child, 'SIGTERM')
  }

  async close(): Promise<void> {
    await this.stop()
    this.store.remove()
  }
}
