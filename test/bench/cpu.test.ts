import { test } from 'node:test'
import assert from 'node:assert/strict'
import { costOf, parseProcStatCpuMicros, procTicksPerSecond, readServerCpu, startCpuMeter } from '../../src/bench/index.ts'

test('a /proc stat line gives utime + stime, even when the command name holds spaces and parentheses', () => {
  // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime …
  const line = '4242 (node (tally) x) S 1 4242 4242 0 -1 4194560 5000 0 12 0 250 30 0 0 20 0 11 0 99 0 0'
  assert.equal(parseProcStatCpuMicros(line), ((250 + 30) * 1_000_000) / procTicksPerSecond)
  assert.throws(() => parseProcStatCpuMicros('4242 node S 1'), /parentheses/)
})

test('the server meter reads a live process and its main thread, and says nothing for a gone one', { skip: process.platform !== 'linux' && 'reads Linux /proc' }, () => {
  const times = readServerCpu(process.pid)
  assert.ok(times !== undefined)
  assert.ok(times.micros >= times.mainThreadMicros, 'the whole process spends at least what its main thread does')
  assert.ok(times.mainThreadMicros >= 0)
  assert.equal(readServerCpu(0x3fff_fff0), undefined)
})

test('costs are per committed transaction and per operation, each absent when there was none', () => {
  assert.deepEqual(costOf(5000, { transactions: 100, operations: 100 }), { micros: 5000, microsPerTransaction: 50, microsPerOperation: 50 })
  // A read-only run commits nothing: its reads are what the CPU bought.
  assert.deepEqual(costOf(5000, { transactions: 0, operations: 250 }), { micros: 5000, microsPerTransaction: null, microsPerOperation: 20 })
  assert.deepEqual(costOf(5000, { transactions: 0, operations: 0 }), { micros: 5000, microsPerTransaction: null, microsPerOperation: null })
  const meter = startCpuMeter(undefined)
  const cpu = meter.finish(10)
  assert.equal(cpu.server, null)
  assert.ok(cpu.client.micros >= 0)
  assert.equal(cpu.client.microsPerOperation, cpu.client.micros / 10, 'a bare count is transactions, one operation each')
  const readings = [
    { micros: 1000, mainThreadMicros: 400 },
    { micros: 3000, mainThreadMicros: 1200 },
  ]
  const reads = startCpuMeter(process.pid, () => readings.shift())
  const server = reads.finish({ transactions: 0, operations: 4 }).server
  assert.ok(server !== null)
  assert.equal(server.microsPerOperation, 500)
  assert.equal(server.mainThreadMicrosPerOperation, 200)
  assert.equal(server.microsPerTransaction, null)
  assert.equal(server.mainThreadMicrosPerTransaction, null)
})

test('a process family counts its direct children, as PostgreSQL backends under the postmaster', { skip: process.platform !== 'linux' && 'reads Linux /proc' }, async () => {
  const { spawn } = await import('node:child_process')
  const { parseProcStatParentPid, readProcessFamilyCpu } = await import('../../src/bench/index.ts')
  assert.equal(parseProcStatParentPid('4242 (a ) b) S 17 4242 4242 0'), 17)
  const child = spawn(process.execPath, ['-e', 'while (process.cpuUsage().user < 300000) {} setInterval(() => {}, 1000)'], { stdio: 'ignore' })
  try {
    const pid = child.pid
    assert.ok(pid !== undefined)
    const deadline = Date.now() + 20_000
    let childMicros = 0
    while (childMicros < 200_000 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20)) // poll interval, bounded by the deadline
      childMicros = readServerCpu(pid)?.micros ?? 0
    }
    assert.ok(childMicros >= 200_000, 'the child burnt CPU')
    const own = readServerCpu(process.pid)
    const family = readProcessFamilyCpu(process.pid)
    assert.ok(own !== undefined && family !== undefined)
    assert.ok(family.micros >= own.micros + childMicros, 'the family includes the child')
  } finally {
    child.kill('SIGKILL')
  }
})
