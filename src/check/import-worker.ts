import { parentPort, workerData } from 'node:worker_threads'
import type { LedgerName } from '../domain/index.ts'
import { TallyError } from '../domain/index.ts'
import { parseJsonStream } from './json-stream.ts'
import { LogPlanner, RefusedLog, mapsAlone } from './import-plan.ts'
import type { WireValue } from './import-wire.ts'
import { writeCheckedLog, writePlannedLog } from './import-wire.ts'
import type { FromPlanner, ToPlanner } from './import-planner-thread.ts'

/**
 * The import's worker thread (started by `import-planner-thread.ts`): reads
 * the byte chunks of a v2 log stream it is sent, parses each log, checks it
 * against the chain (its id, fields and hash) and maps it to its order
 * (`LogPlanner`), and posts each chunk's logs back as one batch of
 * `import-wire.ts`. The first log refused ends it: the batch of the logs
 * before it goes first, then the refusal, so the pipeline's thread sees
 * them in the stream's order.
 */
const port = parentPort
if (port === null) throw new Error('import-worker.ts runs as a worker thread')
const { ledger } = workerData as { ledger: LedgerName }

const inbox: ToPlanner[] = []
let wake: (() => void) | undefined
port.on('message', (message: ToPlanner) => {
  inbox.push(message)
  const resume = wake
  wake = undefined
  resume?.()
})

let wire: WireValue[] = []
let chunksRead = 0

function post(message: FromPlanner): void {
  port?.postMessage(message)
}

/** Posts the logs gathered so far and the chunks they came from (the sender's window moves on as they are applied). */
function flush(): void {
  if (wire.length === 0 && chunksRead === 0) return
  post({ type: 'logs', wire, chunks: chunksRead })
  wire = []
  chunksRead = 0
}

class Aborted extends Error {}

/** The source's chunks as they come (a refusal names the byte it would name beside the pipeline); before waiting for the next, the logs of the last are posted. */
async function* chunks(): AsyncGenerator<Buffer> {
  for (;;) {
    flush()
    while (inbox.length === 0) await new Promise<void>((resolve) => (wake = resolve))
    const message = inbox.shift() as ToPlanner
    if (message.type === 'end') return
    if (message.type === 'abort') throw new Aborted()
    chunksRead++
    yield Buffer.from(message.bytes.buffer, message.bytes.byteOffset, message.bytes.byteLength)
  }
}

async function run(): Promise<void> {
  const planner = new LogPlanner(ledger)
  try {
    for await (const raw of parseJsonStream(chunks())) {
      const checked = planner.check(raw)
      if (!mapsAlone(checked) || !writePlannedLog(planner.map(checked), wire)) writeCheckedLog(checked, wire)
    }
    flush()
    post({ type: 'end' })
  } catch (error) {
    flush()
    if (error instanceof Aborted) post({ type: 'aborted' })
    else if (error instanceof RefusedLog) post({ type: 'refused', error: errorFields(error.error), applyBefore: error.applyBefore })
    else if (error instanceof TallyError) post({ type: 'refused', error: errorFields(error), applyBefore: false })
    else post({ type: 'failed', name: (error as Error).name, message: (error as Error).message, stack: (error as Error).stack ?? '' })
  }
}

function errorFields(error: TallyError): { code: string; kind: string; message: string; details: Record<string, string> | undefined } {
  return { code: error.code, kind: error.kind, message: error.message, details: error.details === undefined ? undefined : { ...error.details } }
}

await run()
