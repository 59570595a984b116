import { test } from 'node:test'
import assert from 'node:assert/strict'
import { runSimCommand, simExit } from '../../src/cli/sim-command.ts'

function capture(env: Record<string, string> = {}) {
  const out: string[] = []
  const err: string[] = []
  return { io: { out: (text: string) => void out.push(text), err: (text: string) => void err.push(text), env }, out, err }
}

test('tally sim prints runs, steps and violations and exits 0 when clean', async () => {
  const { io, out } = capture()
  assert.equal(await runSimCommand(['--seeds', '5', '--seed', '3', '--steps', '50'], io), simExit.ok)
  const text = out.join('')
  assert.match(text, /^runs 5$/m)
  assert.match(text, /^steps 250$/m)
  assert.match(text, /^violations 0$/m)
  assert.match(text, /^paths: budget violations \d+ catch-up timeouts \d+ reservation timeouts \d+ pin failures \d+ rebuild stalls \d+$/m)
  assert.match(text, /^ +deposed primaries \d+ writes to deposed primaries \d+ commits held back without a lease \d+$/m)
  assert.match(text, /^liveness: 5 of 5 runs settled after faults stopped, slowest in \d+ ticks$/m)
})

test('tally sim --delay/--loss/--duplicate turn the network model on', async () => {
  const { io, out } = capture()
  assert.equal(await runSimCommand(['--seeds', '3', '--seed', '10', '--steps', '100', '--delay', '2', '--loss', '2', '--duplicate', '2'], io), simExit.ok)
  assert.match(out.join(''), /^violations 0$/m)
  const bad = capture()
  assert.equal(await runSimCommand(['--loss', '80'], bad.io), simExit.usage)
})

test('tally sim --ledger runs the ledger in the simulator and prints what it applied', async () => {
  const { io, out } = capture()
  assert.equal(await runSimCommand(['--seeds', '2', '--seed', '1', '--steps', '60', '--ledger'], io), simExit.ok)
  const text = out.join('')
  assert.match(text, /^violations 0$/m)
  assert.match(text, /^ledger: entries applied [1-9]\d* \(stale \d+\) orders applied [1-9]\d* refused \d+ states rebuilt \d+ images installed \d+$/m)
  const without = capture()
  assert.equal(await runSimCommand(['--seeds', '1', '--steps', '10'], without.io), simExit.ok)
  assert.doesNotMatch(without.out.join(''), /^ledger:/m)
})

test('tally sim --membership changes membership and prints what it changed', async () => {
  const { io, out } = capture()
  assert.equal(await runSimCommand(['--seeds', '4', '--seed', '1', '--steps', '150', '--membership'], io), simExit.ok)
  const text = out.join('')
  assert.match(text, /^violations 0$/m)
  assert.match(text, /^membership: changes [1-9]\d* refused by the rules \d+ learners made voters \d+$/m)
  const fromEnv = capture({ TALLY_SIM_MEMBERSHIP: '1' })
  assert.equal(await runSimCommand(['--seeds', '1', '--steps', '20'], fromEnv.io), simExit.ok)
  assert.match(fromEnv.out.join(''), /^membership: /m)
  const without = capture()
  assert.equal(await runSimCommand(['--seeds', '1', '--steps', '10'], without.io), simExit.ok)
  assert.doesNotMatch(without.out.join(''), /^membership:/m)
})

test('tally sim reads its options from the environment', async () => {
  const { io, out } = capture({ TALLY_SIM_SEEDS: '2', TALLY_SIM_STEPS: '10' })
  assert.equal(await runSimCommand([], io), simExit.ok)
  assert.match(out.join(''), /^steps 20$/m)
})

test('tally sim --trace prints a replayable trace of one seed', async () => {
  const { io, out } = capture()
  assert.equal(await runSimCommand(['--seeds', '1', '--seed', '9', '--steps', '30', '--trace'], io), simExit.ok)
  const text = out.join('')
  assert.match(text, /t=\d+ action write lsn=1/)
  assert.match(text, /seed 9 \(/)
})

test('tally sim --help and bad usage', async () => {
  const help = capture()
  assert.equal(await runSimCommand(['--help'], help.io), simExit.ok)
  assert.match(help.out.join(''), /Usage: tally sim --seeds N/)
  for (const argv of [['--seeds', 'x'], ['--steps', '0'], ['--bogus'], ['--durability', 'maybe'], ['--nodes', '2', '--durability', 'sync_quorum']]) {
    const bad = capture()
    assert.equal(await runSimCommand(argv, bad.io), simExit.usage, argv.join(' '))
    assert.ok(bad.err.join('').length > 0)
  }
})
