import { test } from 'node:test'
import assert from 'node:assert/strict'
import { byteSize, parseServeArgs } from '../../src/cli/serve-command.ts'

test('serve: cache flags are optional (an existing data directory keeps its own), byte budgets take units', () => {
  const none = parseServeArgs([], {})
  assert.ok(none !== 'help')
  assert.equal(none.cacheRotationThreshold, undefined)
  assert.equal(none.cacheGenerationBytesMax, undefined)
  const given = parseServeArgs(['--cache-rotation-threshold', '50', '--cache-generation-bytes-max', '64MiB'], {})
  assert.ok(given !== 'help')
  assert.equal(given.cacheRotationThreshold, 50)
  assert.equal(given.cacheGenerationBytesMax, 64 * 1024 * 1024)
  const fromEnv = parseServeArgs([], { TALLY_CACHE_GENERATION_BYTES_MAX: '512k', TALLY_CACHE_ROTATION_THRESHOLD: '7' })
  assert.ok(fromEnv !== 'help')
  assert.equal(fromEnv.cacheGenerationBytesMax, 512 * 1024)
  assert.equal(fromEnv.cacheRotationThreshold, 7)
  assert.equal(byteSize('1G', 'x'), 1024 ** 3)
  assert.equal(byteSize('67108864', 'x'), 67108864)
  for (const bad of ['0', '12', '1.5MiB', '64XB', '-1', 'MiB', ''])
    assert.throws(() => byteSize(bad, '--cache-generation-bytes-max'), /--cache-generation-bytes-max: expected/, bad)
  assert.throws(() => parseServeArgs(['--cache-rotation-threshold', '0'], {}), /--cache-rotation-threshold/)
})

test('serve: --loop-stall-ms sets the stall watch threshold (flag or TALLY_LOOP_STALL_MS), refusing one near its 20 ms tick', () => {
  const none = parseServeArgs([], {})
  assert.ok(none !== 'help')
  assert.equal(none.loopStallMs, undefined, 'the default is the watch own (100 ms)')
  const given = parseServeArgs(['--loop-stall-ms', '250'], {})
  assert.ok(given !== 'help')
  assert.equal(given.loopStallMs, 250)
  const fromEnv = parseServeArgs([], { TALLY_LOOP_STALL_MS: '50' })
  assert.ok(fromEnv !== 'help')
  assert.equal(fromEnv.loopStallMs, 50)
  assert.throws(() => parseServeArgs(['--loop-stall-ms', '49'], {}), /--loop-stall-ms: at least 50 ms/)
  assert.throws(() => parseServeArgs(['--loop-stall-ms', 'soon'], {}), /--loop-stall-ms/)
})
