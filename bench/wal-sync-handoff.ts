/**
 * The JavaScript thread's CPU for one WAL group's write and fdatasync hand-off,
 * by way of doing it (round 2 of helper "single", issue 12): what the ~32 µs per
 * group seen in the 64-connection profile are made of.
 *
 *   node --import tsx bench/wal-sync-handoff.ts [--directory DIR] [--groups N]
 *     [--rounds R] [--bytes B] [--pieces P] [--modes NAME,NAME]
 *
 * Each round runs every mode once, in turn (alternated), N groups each, one
 * after the other (the next group after the previous is durable, as at the
 * server's peak where fdatasyncs run one at a time). A group is P buffers of
 * B bytes in total, written at increasing positions of a zero-filled file.
 * The JavaScript thread's own CPU comes from /proc/thread-self/schedstat (ns
 * on CPU), so the pool's threads and the disk do not count.
 *
 * Modes:
 * - `writevSync+promise`: `writevSync` on this thread, then `FileHandle.datasync()`
 *   (what the WAL does today);
 * - `writevSync+callback`: the same write, then `fs.fdatasync(fd, callback)`
 *   wrapped in one promise;
 * - `writevSync only`: the write alone, no sync (the write's own share);
 * - `promise only`: `FileHandle.datasync()` alone on a file with nothing dirty
 *   (the hand-off without the disk);
 * - `callback only`: `fs.fdatasync(fd, callback)` alone, the same;
 * - `O_DSYNC writev`: the write and its sync as one pool job: `fs.writev` with a
 *   callback on a file opened with O_DSYNC (each write returns once durable).
 */
import * as fs from 'node:fs'
import { open, type FileHandle } from 'node:fs/promises'
import * as os from 'node:os'
import * as path from 'node:path'

function argument(name: string, fallback: string): string {
  const at = process.argv.indexOf(name)
  return at >= 0 ? (process.argv[at + 1] ?? fallback) : fallback
}

const directory = argument('--directory', os.tmpdir())
const groups = Number(argument('--groups', '1000'))
const rounds = Number(argument('--rounds', '5'))
const bytes = Number(argument('--bytes', '6000'))
const pieces = Number(argument('--pieces', '1'))
const only = argument('--modes', '')

function threadNs(): number {
  const text = fs.readFileSync('/proc/thread-self/schedstat', 'utf8')
  return Number(text.split(' ')[0])
}

function fdatasyncCallback(fd: number): Promise<void> {
  return new Promise((resolve, reject) => {
    fs.fdatasync(fd, (error) => (error === null ? resolve() : reject(error)))
  })
}

const buffers: Buffer[] = []
for (let at = 0; at < pieces; at += 1) buffers.push(Buffer.alloc(Math.ceil(bytes / pieces), 0x41 + at))
const fileBytes = groups * bytes + 1024 * 1024

type Mode = (handle: FileHandle, position: number) => Promise<void>

function writevDurable(fd: number, position: number): Promise<void> {
  return new Promise((resolve, reject) => {
    fs.writev(fd, buffers, position, (error) => (error === null ? resolve() : reject(error)))
  })
}
const modes: Record<string, Mode> = {
  'writevSync+promise': async (handle, position) => {
    fs.writevSync(handle.fd, buffers, position)
    await handle.datasync()
  },
  'writevSync+callback': async (handle, position) => {
    fs.writevSync(handle.fd, buffers, position)
    await fdatasyncCallback(handle.fd)
  },
  'writevSync only': async (handle, position) => {
    fs.writevSync(handle.fd, buffers, position)
  },
  'promise only': async (handle) => {
    await handle.datasync()
  },
  'callback only': async (handle) => {
    await fdatasyncCallback(handle.fd)
  },
  'O_DSYNC writev': async (handle, position) => {
    await writevDurable(handle.fd, position)
  },
}

async function runMode(name: string, mode: Mode): Promise<{ jsUs: number; wallUs: number }> {
  const file = path.join(directory, `handoff-${process.pid}-${name.replace(/[^a-z]/gi, '')}`)
  const filled = await open(file, 'w+')
  await filled.write(Buffer.alloc(fileBytes), 0, fileBytes, 0)
  await filled.sync()
  await filled.close()
  const dsync = name.startsWith('O_DSYNC')
  const handle = await open(file, fs.constants.O_RDWR | (dsync ? fs.constants.O_DSYNC : 0))
  try {
    for (let at = 0; at < 50; at += 1) await mode(handle, at * bytes)
    const startNs = threadNs()
    const startWall = performance.now()
    for (let at = 0; at < groups; at += 1) await mode(handle, at * bytes)
    const jsUs = (threadNs() - startNs) / 1000 / groups
    const wallUs = ((performance.now() - startWall) * 1000) / groups
    return { jsUs, wallUs }
  } finally {
    await handle.close()
    fs.rmSync(file, { force: true })
  }
}

const table: Record<string, number[]> = {}
console.log(`| round | mode | JS thread µs per group | wall µs per group | load |`)
console.log(`| --- | --- | --- | --- | --- |`)
for (let round = 1; round <= rounds; round += 1) {
  const names = Object.keys(modes).filter((name) => only === '' || only.split(',').includes(name))
  if (round % 2 === 0) names.reverse()
  for (const name of names) {
    const mode = modes[name]
    if (mode === undefined) throw new Error(name)
    const { jsUs, wallUs } = await runMode(name, mode)
    ;(table[name] ??= []).push(jsUs)
    console.log(`| ${round} | ${name} | ${jsUs.toFixed(1)} | ${wallUs.toFixed(0)} | ${os.loadavg().map((x) => x.toFixed(1)).join(' ')} |`)
  }
}
console.log()
console.log(`| mode | JS thread µs per group, median of rounds | min |`)
console.log(`| --- | --- | --- |`)
for (const [name, values] of Object.entries(table)) {
  const sorted = [...values].sort((a, b) => a - b)
  console.log(`| ${name} | ${sorted[Math.floor(sorted.length / 2)]?.toFixed(1)} | ${sorted[0]?.toFixed(1)} |`)
}
