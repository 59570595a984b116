import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { killTally, repositoryRoot, spawnTally } from '../support/server-process.ts'
import type { ServerProcess } from '../support/server-process.ts'
import { tempDirectory } from '../support/temp.ts'
import { describeStartupFailure } from '../../src/cli/serve-command.ts'

/**
 * `tally serve` refusing to start says what is wrong and what to do in one
 * line, exits 1, and prints no stack trace — and touches no disk when the
 * port is the problem.
 */

interface Outcome {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

function runServe(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<Outcome> {
  const child = spawn(process.execPath, [path.join(repositoryRoot, 'bin', 'tally.mjs'), 'serve', ...args], {
    cwd: repositoryRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })))
}

/** The node's own log lines: JSON lines (pino's shape) on stderr. */
function isLogLine(line: string): boolean {
  try {
    const parsed: unknown = JSON.parse(line)
    return typeof parsed === 'object' && parsed !== null && 'level' in parsed && 'msg' in parsed
  } catch {
    return false
  }
}

/** Exit 1, one `tally serve:` line matching `pattern`, no stack trace, nothing on stdout. */
function assertRefused(outcome: Outcome, pattern: RegExp): void {
  assert.equal(outcome.code, 1, `exit code; stderr: ${outcome.stderr}`)
  assert.doesNotMatch(outcome.stderr, /^\s+at /m, `no stack trace: ${outcome.stderr}`)
  const lines = outcome.stderr.split('\n').filter((line) => line.startsWith('tally serve:'))
  assert.equal(lines.length, 1, `one line saying what is wrong: ${outcome.stderr}`)
  assert.match(lines[0] as string, pattern)
  const others = outcome.stderr.split('\n').filter((line) => line !== '' && !line.startsWith('tally serve:') && !isLogLine(line))
  assert.deepEqual(others, [], `nothing but the line and log lines: ${outcome.stderr}`)
  assert.equal(outcome.stdout, '')
}

describe('tally serve startup failures', () => {
  const temp = tempDirectory('tally-serve-cli-')
  let running: ServerProcess
  let occupied: net.Server
  let occupiedPort: number
  before(async () => {
    running = await spawnTally({ dataDirectory: path.join(temp.directory, 'first') })
    occupied = net.createServer()
    await new Promise<void>((resolve) => occupied.listen({ host: '127.0.0.1', port: 0 }, resolve))
    occupiedPort = (occupied.address() as net.AddressInfo).port
  })
  after(async () => {
    await killTally(running, 'SIGTERM')
    await new Promise<void>((resolve) => occupied.close(() => resolve()))
    temp.remove()
  })

  test('a second serve on the same data directory', async () => {
    const outcome = await runServe(['--data', path.join(temp.directory, 'first'), '--listen', '127.0.0.1:0'])
    assertRefused(outcome, /in use by another .*--data/)
  })

  test('a port in use, without creating the data directory first', async () => {
    const directory = path.join(temp.directory, 'never-created')
    const outcome = await runServe(['--data', directory, '--listen', `127.0.0.1:${occupiedPort}`])
    assertRefused(outcome, new RegExp(`${occupiedPort}.*in use.*--listen`))
    assert.equal(existsSync(directory), false, 'the data directory was not created')
  })

  test('a data directory under a file, or that is a file', async () => {
    const file = path.join(temp.directory, 'a-file')
    writeFileSync(file, 'not a directory')
    assertRefused(await runServe(['--data', path.join(file, 'data'), '--listen', '127.0.0.1:0']), /not a directory.*--data/)
    assertRefused(await runServe(['--data', file, '--listen', '127.0.0.1:0']), /not a directory.*--data/)
  })

  test('a data directory that is not writable', { skip: process.getuid?.() === 0 ? 'runs as root: permissions do not apply' : false }, async () => {
    const locked = path.join(temp.directory, 'locked')
    mkdirSync(locked)
    chmodSync(locked, 0o500)
    try {
      assertRefused(await runServe(['--data', path.join(locked, 'data'), '--listen', '127.0.0.1:0']), /not writable.*--data/)
    } finally {
      chmodSync(locked, 0o700)
    }
  })

  test('bad flag values and unknown flags', async () => {
    const data = ['--data', path.join(temp.directory, 'flags')]
    assertRefused(await runServe([...data, '--listen', 'nowhere']), /--listen.*HOST:PORT.*--help/)
    assertRefused(await runServe([...data, '--listen', '127.0.0.1:70000']), /--listen.*port/)
    assertRefused(await runServe([...data, '--bulk-elements-max', '0']), /--bulk-elements-max.*positive integer/)
    assertRefused(await runServe([...data, '--request-timeout-ms', 'soon']), /--request-timeout-ms/)
    assertRefused(await runServe([...data, '--no-such-flag']), /no-such-flag.*--help/)
    assertRefused(await runServe(data, { TALLY_LISTEN: 'nowhere' }), /TALLY_LISTEN|--listen/)
    assert.equal(existsSync(path.join(temp.directory, 'flags')), false, 'nothing created for a bad command line')
  })
})

test('SIGTERM with a stalled request body: the server stops cleanly without waiting for the client', async () => {
  const temp = tempDirectory('tally-serve-stop-')
  // A long grace: only closing the stalled connection at once can stop the server within the deadline.
  const server = await spawnTally({ dataDirectory: temp.directory, args: ['--shutdown-grace-ms', '60000'] })
  const socket = net.connect({ host: '127.0.0.1', port: Number(new URL(server.baseUrl).port) })
  try {
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject))
    socket.write('POST /v2/main/transactions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{')
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
    server.child.kill('SIGTERM')
    let timer: NodeJS.Timeout | undefined
    const outcome = await Promise.race([
      server.exited,
      new Promise<'deadline'>((resolve) => {
        timer = setTimeout(() => resolve('deadline'), 15_000) // far below the 60 s request timeout and grace
      }),
    ])
    clearTimeout(timer)
    assert.deepEqual(outcome, { code: 0, signal: null }, server.stderr())
    await closed
    assert.match(server.stderr(), /stopped cleanly/)
  } finally {
    socket.destroy()
    await killTally(server)
    temp.remove()
  }
})

test('startup failures are classified from the error and its causes, whoever runs the tests', () => {
  const settings = { dataDirectory: '/data/tally', host: '127.0.0.1', port: 3068 }
  const system = (code: string, syscall: string, path?: string): Error => Object.assign(new Error(`${code}: ${syscall}`), { code, syscall, ...(path ? { path } : {}) })
  const cases: [unknown, RegExp][] = [
    [system('EACCES', 'mkdir', '/data/tally'), /not writable \(EACCES on \/data\/tally\).*--data/],
    [system('EROFS', 'open', '/data/tally/wal/0001'), /not writable \(EROFS.*--data/],
    [system('EPERM', 'mkdir', '/data'), /not writable.*--data/],
    [system('ENOSPC', 'write', '/data/tally/wal'), /no space left.*--data/],
    [system('ENOTDIR', 'mkdir', '/data/tally'), /not a directory.*--data/],
    [Object.assign(new Error('Database is not open'), { code: 'LEVEL_DATABASE_NOT_OPEN', cause: Object.assign(new Error('lock'), { code: 'LEVEL_LOCKED' }) }), /in use by another tally.*--data/],
    [system('EADDRINUSE', 'listen'), /3068.*already in use.*--listen/],
    [system('EACCES', 'listen'), /not allowed to listen.*--listen/],
    [system('EADDRNOTAVAIL', 'listen'), /not an address of this machine.*--listen/],
    [system('ENOTFOUND', 'getaddrinfo'), /cannot resolve host.*--listen/],
    [new Error('something else\nwith a second line'), /^cannot start with data directory \/data\/tally: something else$/],
  ]
  for (const [error, pattern] of cases) assert.match(describeStartupFailure(error, settings), pattern)
})

test('tally serve --loop-stall-ms reaches the event-loop stall watch', async () => {
  const temp = tempDirectory('tally-serve-stall-')
  let server: ServerProcess | undefined
  try {
    server = await spawnTally({ dataDirectory: path.join(temp.directory, 'data'), args: ['--loop-stall-ms', '250'] })
    const line = server
      .stderr()
      .split('\n')
      .find((text) => text.includes('event-loop stall watch on'))
    assert.ok(line !== undefined, server.stderr())
    assert.equal((JSON.parse(line) as { thresholdMs?: number }).thresholdMs, 250)
  } finally {
    if (server !== undefined) await killTally(server, 'SIGTERM')
    temp.remove()
  }
})
