import { execFile } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import { chown, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { invariant } from '../../domain/index.ts'

/**
 * A private PostgreSQL cluster for the benchmark's reference peer: its own
 * data directory in a temp dir, its own loopback port, durable settings
 * (fsync and synchronous_commit on), stopped and deleted at the end. Built
 * from the distribution's binaries (Debian: `apt-get install -y postgresql`);
 * when run as root, initdb and the server run as the `postgres` user, since
 * PostgreSQL refuses to run as root.
 */

export interface PostgresBinaries {
  readonly initdb: string
  readonly pgCtl: string
}

/** Where Debian and most distributions put the server binaries. */
const binaryDirectoryRoots = ['/usr/lib/postgresql', '/usr/local/pgsql']

/** The newest installed `initdb`/`pg_ctl` pair, or undefined when PostgreSQL is not installed. */
export function findPostgresBinaries(): PostgresBinaries | undefined {
  const candidates: string[] = []
  for (const root of binaryDirectoryRoots) {
    if (!existsSync(root)) continue
    if (existsSync(path.join(root, 'bin', 'initdb'))) candidates.push(path.join(root, 'bin'))
    const versions = readdirSync(root).filter((name) => /^[0-9]+$/.test(name)).sort((a, b) => Number(b) - Number(a))
    for (const version of versions) candidates.push(path.join(root, version, 'bin'))
  }
  for (const directory of (process.env['PATH'] ?? '').split(path.delimiter)) if (directory !== '') candidates.push(directory)
  for (const directory of candidates) {
    const initdb = path.join(directory, 'initdb')
    const pgCtl = path.join(directory, 'pg_ctl')
    if (existsSync(initdb) && existsSync(pgCtl)) return { initdb, pgCtl }
  }
  return undefined
}

export interface PostgresClusterOptions {
  readonly binaries: PostgresBinaries
  /** Extra `-c name=value` server settings, applied after the durable defaults. */
  readonly settings?: Readonly<Record<string, string>>
  readonly startMsMax?: number
}

export interface PostgresCluster {
  readonly host: string
  readonly port: number
  readonly user: string
  readonly database: string
  readonly directory: string
  /** The postmaster's process id; its direct children are the backends and background workers. */
  readonly serverPid: number
  /** Stops the server (fast shutdown) and deletes its directory; safe to call twice. */
  stop(): Promise<void>
}

/** The durability the comparison promises: every commit is on disk before the client hears of it. */
export const durableSettings: Readonly<Record<string, string>> = {
  fsync: 'on',
  synchronous_commit: 'on',
  full_page_writes: 'on',
  wal_sync_method: 'fdatasync',
}

/** Sized for a benchmark, not a production box: room for 256 clients and a warm cache. */
const benchSettings: Readonly<Record<string, string>> = {
  max_connections: '300',
  shared_buffers: '512MB',
  max_wal_size: '4GB',
  checkpoint_timeout: '15min',
  listen_addresses: '127.0.0.1',
}

const superuser = 'postgres'

export async function startPostgresCluster(options: PostgresClusterOptions): Promise<PostgresCluster> {
  const runAsPostgres = process.getuid?.() === 0
  const identity = runAsPostgres ? await systemUser(superuser) : undefined
  const directory = await mkdtemp(path.join(os.tmpdir(), 'tally-pg-peer-'))
  const dataDirectory = path.join(directory, 'data')
  if (identity !== undefined) await chown(directory, identity.uid, identity.gid)
  const run = (file: string, args: string[]): Promise<string> =>
    new Promise((resolve, reject) => {
      execFile(
        file,
        args,
        { cwd: directory, ...(identity === undefined ? {} : { uid: identity.uid, gid: identity.gid }), env: { ...process.env, LC_ALL: 'C' } },
        (error, stdout, stderr) => (error === null ? resolve(stdout) : reject(new Error(`${path.basename(file)} failed: ${error.message}\n${stderr}`))),
      )
    })
  try {
    await run(options.binaries.initdb, ['-D', dataDirectory, '-U', superuser, '--auth=trust', '-E', 'UTF8', '--no-instructions'])
    const port = await freeLoopbackPort()
    const settings = { ...benchSettings, ...durableSettings, ...options.settings, port: String(port), unix_socket_directories: directory }
    const conf = Object.entries(settings).map(([name, value]) => `${name} = '${value.replaceAll("'", "''")}'`).join('\n')
    await writeFile(path.join(dataDirectory, 'postgresql.auto.conf'), `${conf}\n`)
    if (identity !== undefined) await chown(path.join(dataDirectory, 'postgresql.auto.conf'), identity.uid, identity.gid)
    const seconds = Math.ceil((options.startMsMax ?? 60_000) / 1000)
    await run(options.binaries.pgCtl, ['-D', dataDirectory, '-l', path.join(directory, 'server.log'), '-w', '-t', String(seconds), 'start'])
    const pidText = await readFile(path.join(dataDirectory, 'postmaster.pid'), 'utf8')
    const serverPid = Number(pidText.split('\n')[0])
    invariant(Number.isSafeInteger(serverPid) && serverPid > 0, 'postmaster.pid starts with the server pid')
    let stopped = false
    return {
      serverPid,
      host: '127.0.0.1',
      port,
      user: superuser,
      database: 'postgres',
      directory,
      async stop() {
        if (stopped) return
        stopped = true
        try {
          // Smart first: clients that just ended their sessions are let go
          // rather than told "terminating connection"; fast if one lingers.
          await run(options.binaries.pgCtl, ['-D', dataDirectory, '-m', 'smart', '-w', '-t', '10', 'stop']).catch(() =>
            run(options.binaries.pgCtl, ['-D', dataDirectory, '-m', 'fast', '-w', 'stop']),
          )
        } finally {
          await rm(directory, { recursive: true, force: true })
        }
      },
    }
  } catch (error) {
    await rm(directory, { recursive: true, force: true })
    throw error
  }
}

async function systemUser(name: string): Promise<{ uid: number; gid: number }> {
  const text = await new Promise<string>((resolve, reject) =>
    execFile('id', ['-u', name], (error, uid) => (error === null ? resolve(uid) : reject(new Error(`no system user ${name}: ${error.message}`)))),
  )
  const gidText = await new Promise<string>((resolve, reject) =>
    execFile('id', ['-g', name], (error, gid) => (error === null ? resolve(gid) : reject(error))),
  )
  const uid = Number(text.trim())
  const gid = Number(gidText.trim())
  invariant(Number.isSafeInteger(uid) && Number.isSafeInteger(gid), `id printed no numbers for ${name}`)
  return { uid, gid }
}

/** A port the kernel just handed out on 127.0.0.1; racy in principle, fine for a private benchmark. */
function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      invariant(address !== null && typeof address === 'object', 'a TCP server has an address object')
      server.close(() => resolve(address.port))
    })
  })
}
