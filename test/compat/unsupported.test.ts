import { test } from 'node:test'
import assert from 'node:assert/strict'
import { operations } from '../../src/api/openapi/index.ts'
import { rejectsWithV2Error, withServer } from './server.ts'
import type { LedgerV2 } from './server.ts'

/** Each unsupported v2 operation, called the way an application would call it through the SDK. */
const calls: Readonly<Record<string, (v2: LedgerV2) => Promise<unknown>>> = {
  v2DeleteBucket: (v2) => v2.deleteBucket({ bucket: '_default' }),
  v2RestoreBucket: (v2) => v2.restoreBucket({ bucket: '_default' }),
}

test('SDK: every operation Tally does not support fails with the typed v2 error, status 501, errorCode INTERNAL, naming the operation', async () => {
  await withServer(async ({ v2 }) => {
    await v2.createLedger({ ledger: 'main', v2CreateLedgerRequest: {} })
    const unsupported = operations.filter((operation) => operation.status.kind === 'unsupported').map((operation) => operation.operationId)
    assert.deepEqual(Object.keys(calls).sort(), [...unsupported].sort(), 'one SDK call per unsupported operation')
    for (const [operationId, call] of Object.entries(calls)) {
      const error = await rejectsWithV2Error(call(v2), { status: 501, errorCode: 'INTERNAL', messageIncludes: `NOT_IMPLEMENTED: Tally does not support ${operationId}` })
      assert.deepEqual(JSON.parse(error.details ?? '{}'), { reason: 'NOT_IMPLEMENTED', operationId, documentation: 'docs/api-compatibility.md' })
    }
  })
})
