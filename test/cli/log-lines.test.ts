import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { linesPerTurn } from '../../src/cli/log-lines.ts'

function recorder(): { readonly target: Writable; readonly writes: string[] } {
  const writes: string[] = []
  const target = new Writable({
    write(chunk: Buffer, _encoding, done) {
      writes.push(chunk.toString('utf8'))
      done()
    },
  })
  return { target, writes }
}

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

test('log lines of one turn are written in one call, in order, before the next turn', async () => {
  const { target, writes } = recorder()
  const lines = linesPerTurn(target, 1000)
  lines.write('{"msg":"incoming request"}\n')
  lines.write('{"msg":"request completed"}\n')
  assert.deepEqual(writes, [], 'nothing written within the turn')
  await nextTurn()
  assert.deepEqual(writes, ['{"msg":"incoming request"}\n{"msg":"request completed"}\n'])
  await nextTurn()
  assert.equal(writes.length, 1, 'an idle turn writes nothing')
})

test('log lines over the byte bound are written at once; flush writes what waits', async () => {
  const { target, writes } = recorder()
  const lines = linesPerTurn(target, 100)
  lines.write('a\n')
  lines.write(`${'x'.repeat(100)}\n`)
  assert.deepEqual(writes, [`a\n${'x'.repeat(100)}\n`], 'the bound reached: written in the same turn')
  lines.write('last line before exit\n')
  lines.flush()
  assert.equal(writes[1], 'last line before exit\n')
  await nextTurn()
  assert.equal(writes.length, 2, 'flushed lines are not written twice')
})
