// What tests need of this machine: a free loopback port, and a service's executable.
import type { ChildProcess } from 'node:child_process'
import { accessSync, constants } from 'node:fs'
import { createServer } from 'node:net'
import path from 'node:path'

/** A port free on 127.0.0.1 right now (the caller binds it next; a start that loses the race tries another). */
export async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', resolve)
  })
  const address = server.address()
  await new Promise<void>((resolve) => server.close(() => resolve()))
  if (address === null || typeof address === 'string') throw new Error('no port')
  return address.port
}

/** An executable on PATH or in one of `alsoIn` (where Debian installs it, often off a user's PATH). */
export function findExecutable(name: string, alsoIn: readonly string[]): string | undefined {
  const directories = [...(process.env.PATH ?? '').split(path.delimiter), ...alsoIn]
  for (const directory of directories) {
    if (directory === '') continue
    const candidate = path.join(directory, name)
    try {
      accessSync(candidate, constants.X_OK)
      return candidate
    } catch {
      // not here
    }
  }
  return undefined
}

/** Signals a child process (if it still runs) and waits for it to exit. */
export async function stopChild(child: ChildProcess | undefined, signal: NodeJS.Signals): Promise<void> {
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return
  await new Promise<void>((resolve) => {
    child.once('exit', () => resolve())
    child.kill(signal)
  })
}

/**
 * Polls `check` until it gives a value, or throws after `deadlineMs`. The
 * poll interval only spaces the checks; the deadline bounds the wait (tests
 * and benches never synchronise on a sleep).
 */
export async function until<T>(what: string, check: () => Promise<T | undefined> | T | undefined, deadlineMs = 15_000, pollMs = 25): Promise<T> {
  const deadline = Date.now() + deadlineMs
  for (;;) {
    const value = await check()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`not within ${deadlineMs} ms: ${what}`)
    await new Promise((resolve) => setTimeout(resolve, pollMs))
  }
}
