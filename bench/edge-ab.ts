/**
 * Two builds of the `_bulk` edge side by side in one process, rounds
 * alternated (a comparison on a shared machine, where separate runs differ
 * by more than the change):
 *
 *   node --import tsx bench/edge-ab.ts --base /tmp/base-tree [--rounds 200] [--what answer|parse]
 *
 * - answer: the `_bulk` answer of 100 transfers with their commit volumes,
 *   printed into a `JsonBytes` as the route does;
 * - parse: a `_bulk` body of 100 transfers as the load generator sends it,
 *   parsed by the HTTP edge's body parser.
 *
 * Both builds must give the same bytes (or the same value); prints the
 * median and the fastest round in ns of process CPU per transaction for each
 * (CPU, not wall time: a descheduled round does not count).
 */
import { parseArgs } from 'node:util'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { isDeepStrictEqual } from 'node:util'

const { values } = parseArgs({ options: { base: { type: 'string' }, rounds: { type: 'string', default: '200' }, what: { type: 'string', default: 'answer' } } })
if (values.base === undefined) throw new Error('--base DIR: the tree to compare against')
const rounds = Number(values.rounds)
const count = 100
const here = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const roots = { base: path.resolve(values.base), head: here }

type Domain = typeof import('../src/domain/index.ts')
type Api = typeof import('../src/api/json-body.ts')

async function load(root: string): Promise<{ domain: Domain; api: Api }> {
  return {
    domain: (await import(pathToFileURL(path.join(root, 'src/domain/index.ts')).href)) as Domain,
    api: (await import(pathToFileURL(path.join(root, 'src/api/json-body.ts')).href)) as Api,
  }
}

function answerPrinter({ domain }: { domain: Domain }): () => Buffer {
  const volumes = (entries: readonly [string, bigint, bigint][]) => {
    const result = domain.emptyKeyed<Record<string, { input: bigint; output: bigint; balance: bigint }>>()
    for (const [account, input, output] of entries) domain.keyedChild(result, account)['USD/2'] = { input, output, balance: input - output }
    return result
  }
  const records = Array.from({ length: count }, (_, i) => {
    const source = `users:${(i * 7) % 1000}`
    const destination = `users:${i}`
    return {
      id: BigInt(100_000 + i),
      postings: [{ source, destination, amount: BigInt(i + 1), asset: 'USD/2' }],
      timestamp: '2026-12-07T04:00:00.123Z',
      insertedAt: '2026-12-07T04:00:00.123Z',
      updatedAt: '2026-12-07T04:00:00.123Z',
      metadata: domain.canonicalMetadata([]),
      reverted: false,
      preCommitVolumes: volumes([[source, 5_000_000n, 100_000n], [destination, 10_000n, 0n]]),
      postCommitVolumes: volumes([[source, 5_000_000n, 100_001n + BigInt(i)], [destination, 10_001n, 0n]]),
    } as unknown as Parameters<Domain['writeTransaction']>[1]
  })
  const out = new domain.JsonBytes()
  return () => {
    out.raw('{"data":[')
    records.forEach((record, i) => {
      out.raw(i === 0 ? '{"responseType":"CREATE_TRANSACTION","logID":' : ',{"responseType":"CREATE_TRANSACTION","logID":')
      out.integer(BigInt(200_000 + i))
      out.raw(',"data":')
      domain.writeTransaction(out, record, { volumes: true })
      out.raw('}')
    })
    out.raw(']}')
    return out.take()
  }
}

const body = `[${Array.from({ length: count }, (_, i) => `{"action":"CREATE_TRANSACTION","data":{"postings":[{"source":"users:${(i * 7) % 1000}","destination":"users:${i}","amount":${i + 1},"asset":"USD/2"}],"force":true}}`).join(',')}]`

function parser({ api }: { api: Api }): () => Promise<unknown> {
  return () => api.parseJsonBody(body)
}

const builds = { base: await load(roots.base), head: await load(roots.head) }
const run = values.what === 'parse' ? { base: parser(builds.base), head: parser(builds.head) } : { base: answerPrinter(builds.base), head: answerPrinter(builds.head) }
const [a, b] = [await run.base(), await run.head()]
if (a instanceof Buffer ? !a.equals(b as Buffer) : !isDeepStrictEqual(a, b)) throw new Error('the two builds give different results')

const timings: Record<'base' | 'head', number[]> = { base: [], head: [] }
for (let round = 0; round < rounds; round++) {
  for (const name of round % 2 === 0 ? (['base', 'head'] as const) : (['head', 'base'] as const)) {
    const started = process.cpuUsage()
    for (let repeat = 0; repeat < 20; repeat++) await run[name]()
    const used = process.cpuUsage(started)
    timings[name].push(((used.user + used.system) * 1000) / 20 / count)
  }
}
process.stdout.write(`${values.what}: | build | median CPU ns/tx | fastest round CPU ns/tx |\n| --- | --- | --- |\n`)
for (const [name, samples] of Object.entries(timings)) {
  samples.sort((x, y) => x - y)
  process.stdout.write(`| ${name} | ${Math.round(samples[Math.floor(samples.length / 2)] as number)} | ${Math.round(samples[0] as number)} |\n`)
}
