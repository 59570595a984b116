/**
 * `tally serve` for the in-process benches (`scans.ts`, `read-views.ts`):
 * started from a checkout on a data directory, and a ledger filled through
 * `tally bench --fill`, the same way for every bench; `tally bench` run
 * against it, and the two trees an alternated comparison (`*-ab.ts`) serves.
 */
import { spawn } from 'node:child_process'
import path from 'node:path'
import { createInterface } from 'node:readline'

export interface ServedTally {
  readonly url: string
  /** From the spawn to the `listening` line. */
  readonly startMs: number
  /** The server process (for `tally bench --server-pid`). */
  readonly pid: number
  stop(): Promise<void>
}

/** Starts `tally serve` from `root` on `data` (log level warn, `args` added, `nodeFlags` given to node, `env` added to its environment); resolves once it is listening. */
export async function serveTally(root: string, data: string, args: readonly string[] = [], nodeFlags: readonly string[] = [], env: Readonly<Record<string, string>> = {}): Promise<ServedTally> {
  const started = performance.now()
  const child = spawn(process.execPath, [...nodeFlags, path.join(root, 'bin', 'tally.mjs'), 'serve', '--data', data, '--listen', '127.0.0.1:0', ...args], {
    env: { ...process.env, TALLY_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGTERM')
    await exited
  }
  try {
    const url = await new Promise<string>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`tally serve exited (${code}) before listening`)))
      createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
        const match = /^listening (\S+):(\d+)$/.exec(line.trim())
        if (match !== null) resolve(`http://127.0.0.1:${match[2]}`)
      })
    })
    return { url, startMs: performance.now() - started, pid: child.pid ?? 0, stop }
  } catch (error) {
    await stop()
    throw error
  }
}

/** Fills `ledger` in a new data directory `data` with `fill` transactions over `accounts` accounts (`tally bench --fill`), then stops the server. */
export async function filledData(root: string, data: string, fill: { ledger: string; accounts: number; transactions: string }): Promise<void> {
  const server = await serveTally(root, data)
  try {
    const args = ['bench', '--target', server.url, '--ledger', fill.ledger, '--accounts', String(fill.accounts), '--fill', fill.transactions, '--workload', 'get-account:1', '--requests', '1']
    const bench = spawn(process.execPath, [path.join(root, 'bin', 'tally.mjs'), ...args], { stdio: ['ignore', 'ignore', 'inherit'] })
    const code = await new Promise<number | null>((resolve) => bench.once('exit', resolve))
    if (code !== 0) throw new Error(`the fill exited ${code}`)
  } finally {
    await server.stop()
  }
}

/** Runs `tally bench ARGS` from `root`; resolves with its standard output (its stderr shown or not). */
export function tallyBench(root: string, args: readonly string[], stderr: 'inherit' | 'ignore' = 'inherit'): Promise<string> {
  const child = spawn(process.execPath, [path.join(root, 'bin', 'tally.mjs'), 'bench', ...args], { stdio: ['ignore', 'pipe', stderr] })
  let out = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk))
  return new Promise((resolve, reject) => child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`tally bench exited ${code}`)))))
}

/**
 * The two checkouts an alternated comparison serves, from `--base DIR` and
 * `--head DIR` (this checkout when absent), and each one's node flags from
 * `--base-node-options` / `--head-node-options` (space-separated).
 */
export function abTrees(
  values: { base?: string; head?: string; 'base-node-options': string; 'head-node-options': string },
  here: string,
): { roots: Record<'base' | 'head', string>; nodeOptions: Record<'base' | 'head', string[]> } {
  if (values.base === undefined) throw new Error('--base DIR: the tree to compare against')
  const flags = (text: string): string[] => text.split(' ').filter((flag) => flag !== '')
  return {
    roots: { base: path.resolve(values.base), head: path.resolve(values.head ?? here) },
    nodeOptions: { base: flags(values['base-node-options']), head: flags(values['head-node-options']) },
  }
}
