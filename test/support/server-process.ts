import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export const repositoryRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')

export interface ServerProcess {
  readonly child: ChildProcess
  readonly baseUrl: string
  /** Resolves once the process has exited, with how. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** The last few KiB the server wrote to stderr, for failure messages. */
  stderr(): string
}

const stderrBytesKept = 16 * 1024

/**
 * Starts `tally serve` on 127.0.0.1 with an ephemeral port and resolves when
 * it prints `listening HOST:PORT`; rejects if it exits first or misses the
 * deadline (then it is killed).
 */
/**
 * How long a start may take before the test gives up: generous, because a
 * start compiles the TypeScript tree through tsx, which took over 20 s on a
 * 2-core machine at load average ~37. A deadline, not a wait: a start that
 * prints `listening` sooner resolves at once.
 */
const startMsMaxDefault = 90_000

export function spawnTally(options: { dataDirectory: string; args?: readonly string[]; startMsMax?: number }): Promise<ServerProcess> {
  const child = spawn(
    process.execPath,
    [path.join(repositoryRoot, 'bin', 'tally.mjs'), 'serve', '--data', options.dataDirectory, '--listen', '127.0.0.1:0', ...(options.args ?? [])],
    { cwd: repositoryRoot, stdio: ['ignore', 'pipe', 'pipe'] },
  )
  let stderrText = ''
  child.stderr?.setEncoding('utf8')
  child.stderr?.on('data', (chunk: string) => {
    stderrText = (stderrText + chunk).slice(-stderrBytesKept)
  })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }))
  })
  const stderr = (): string => stderrText
  return new Promise<ServerProcess>((resolve, reject) => {
    let settled = false
    const deadline = setTimeout(() => {
      if (settled) return
      settled = true
      child.kill('SIGKILL')
      reject(new Error(`tally serve did not print "listening" within ${options.startMsMax ?? startMsMaxDefault} ms\n${stderrText}`))
    }, options.startMsMax ?? startMsMaxDefault)
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream })
    lines.on('line', (line) => {
      const match = /^listening (\S+):(\d+)$/.exec(line.trim())
      if (match === null || settled) return
      settled = true
      clearTimeout(deadline)
      resolve({ child, baseUrl: `http://127.0.0.1:${match[2]}`, exited, stderr })
    })
    void exited.then(({ code, signal }) => {
      if (settled) return
      settled = true
      clearTimeout(deadline)
      reject(new Error(`tally serve exited (code ${code}, signal ${signal}) before listening\n${stderrText}`))
    })
  })
}

/** SIGKILLs the server if it still runs and waits for its exit. */
export async function killTally(server: ServerProcess, signal: NodeJS.Signals = 'SIGKILL'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill(signal)
  return server.exited
}
