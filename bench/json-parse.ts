/**
 * The lossless JSON parser on what it parses in service, µs of process CPU
 * per element, beside native `JSON.parse` (the floor: inexact past 2^53, no
 * repeated-key refusal) and, with `--base`, the parser of another tree in
 * the same process, rounds alternated (a comparison on a shared machine):
 *
 *   node --import tsx bench/json-parse.ts [--base /tmp/base-tree] [--logs FILE] [--rounds 40]
 *
 * - bulk: a `_bulk` body of 100 transfers as `tally bench` sends it
 *   (`encodeTransaction`), through the HTTP edge's `parseJsonBody`; per element;
 * - single: one create-transaction body, through `parseJsonBody`; per body;
 * - logs: the lines of a v2 export (`--logs FILE`, one log per line), each
 *   through `parseJson`; per log. Make one with
 *   `node --import tsx bench/check-import.ts --transactions 5000 --bulk 100 --dir D --only build,export`
 *   (the file is D/bench.jsonl);
 * - import stream: the same file through `parseJsonStream` (the reader of
 *   `tally import`) in chunks of 1 MiB; per log.
 *
 * Each build must give the same values as the other (checked once before
 * timing). Prints the median and the fastest round for each.
 */
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { isDeepStrictEqual, parseArgs } from 'node:util'
import os from 'node:os'
import { encodeTransaction } from '../src/bench/workloads/index.ts'

const { values } = parseArgs({ options: { base: { type: 'string' }, logs: { type: 'string' }, rounds: { type: 'string', default: '40' } } })
const rounds = Number(values.rounds)
const here = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

type Domain = typeof import('../src/domain/index.ts')
type Api = typeof import('../src/api/json-body.ts')
type Check = typeof import('../src/check/index.ts')
interface Build {
  readonly domain: Domain
  readonly api: Api
  readonly check: Check
}

async function load(root: string): Promise<Build> {
  const at = (file: string): string => pathToFileURL(path.join(root, file)).href
  return {
    domain: (await import(at('src/domain/index.ts'))) as Domain,
    api: (await import(at('src/api/json-body.ts'))) as Api,
    check: (await import(at('src/check/index.ts'))) as Check,
  }
}

const bulkSize = 100
/** A copy in one flat string, as the server decodes a body and the import a chunk (a sliced or concatenated string reads slower). */
const flat = (text: string): string => Buffer.from(text, 'utf8').toString('utf8')
const bulkBody = flat(`[${Array.from({ length: bulkSize }, (_, i) => {
  const data = encodeTransaction({ sourceIndex: i % 4 === 0 ? undefined : (i * 7919) % 10_000, destinationIndex: (i * 104_729) % 10_000, amount: 1 + ((i * 7_777_777) % 100_000_000) })
  return `${i === 0 ? '' : ','}{"action":"CREATE_TRANSACTION","data":${data}}`
}).join('')}]`)
const singleBody = flat(encodeTransaction({ sourceIndex: 42, destinationIndex: 4242, amount: 123_456 }))
const singlesPerRound = 100
const logText = values.logs === undefined ? undefined : readFileSync(values.logs, 'utf8')
const logLines = logText === undefined ? [] : logText.split('\n').filter((line) => line.length > 0).map(flat)

interface Case {
  readonly name: string
  readonly per: string
  readonly elements: number
  /** Parses the input once; gives back every value when `keep` (to compare builds), else only the last. */
  readonly run: (build: Build | 'native', keep?: boolean) => Promise<unknown>
}

const cases: Case[] = [
  {
    name: 'bulk of 100 (parseJsonBody)',
    per: 'element',
    elements: bulkSize,
    run: async (build) => (build === 'native' ? JSON.parse(bulkBody) : build.api.parseJsonBody(bulkBody)),
  },
  {
    name: 'single create (parseJsonBody)',
    per: 'body',
    elements: singlesPerRound,
    run: async (build) => {
      let last: unknown
      for (let i = 0; i < singlesPerRound; i++) last = build === 'native' ? JSON.parse(singleBody) : await build.api.parseJsonBody(singleBody)
      return last
    },
  },
]
if (logLines.length > 0) {
  cases.push({
    name: `export lines (parseJson, ${Math.round((logText as string).length / logLines.length)} B each)`,
    per: 'log',
    elements: logLines.length,
    run: async (build, keep) => {
      const values: unknown[] = []
      let last: unknown
      for (const line of logLines) {
        last = build === 'native' ? JSON.parse(line) : build.domain.parseJson(line)
        if (keep === true) values.push(last)
      }
      return keep === true ? values : last
    },
  })
  const chunks: Buffer[] = []
  const bytes = Buffer.from(logText as string, 'utf8')
  for (let at = 0; at < bytes.length; at += 1 << 20) chunks.push(bytes.subarray(at, at + (1 << 20)))
  cases.push({
    name: 'import stream (parseJsonStream, 1 MiB chunks)',
    per: 'log',
    elements: logLines.length,
    run: async (build, keep) => {
      if (build === 'native') return undefined
      const values: unknown[] = []
      let last: unknown
      for await (const value of build.check.parseJsonStream(
        (async function* () {
          yield* chunks
        })(),
      )) {
        last = value
        if (keep === true) values.push(value)
      }
      return keep === true ? values : last
    },
  })
}

const builds: Record<string, Build | 'native'> = { head: await load(here), native: 'native' }
if (values.base !== undefined) builds.base = await load(path.resolve(values.base))
const names = Object.keys(builds)

process.stdout.write(`json-parse: ${new Date().toISOString()}, node ${process.version}, ${os.cpus().length} CPUs, load ${os.loadavg().map((n) => n.toFixed(1)).join(' ')}, ${rounds} rounds\n\n`)
process.stdout.write('| input | build | median µs per | fastest round µs per |\n| --- | --- | --- | --- |\n')
for (const testCase of cases) {
  if (builds.base !== undefined && !isDeepStrictEqual(await testCase.run(builds.base, true), await testCase.run(builds.head as Build, true))) {
    throw new Error(`${testCase.name}: the two builds give different values`)
  }
  const timings = new Map<string, number[]>(names.map((name) => [name, []]))
  const repeats = Math.max(1, Math.round(2000 / testCase.elements))
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? names : [...names].reverse()
    for (const name of order) {
      const build = builds[name] as Build | 'native'
      const started = process.cpuUsage()
      for (let repeat = 0; repeat < repeats; repeat++) await testCase.run(build)
      const used = process.cpuUsage(started)
      ;(timings.get(name) as number[]).push((used.user + used.system) / repeats / testCase.elements)
    }
  }
  for (const name of names) {
    if (name === 'native' && testCase.name.startsWith('import')) continue
    const samples = (timings.get(name) as number[]).sort((x, y) => x - y)
    process.stdout.write(`| ${testCase.name} | ${name === 'native' ? 'JSON.parse' : name} | ${(samples[Math.floor(samples.length / 2)] as number).toFixed(2)} per ${testCase.per} | ${(samples[0] as number).toFixed(2)} |\n`)
  }
}
process.stdout.write(`\nload after: ${os.loadavg().map((n) => n.toFixed(1)).join(' ')}\n`)
