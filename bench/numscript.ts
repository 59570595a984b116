/**
 * Numscript interpreter benchmark.
 *
 *   node --import tsx bench/numscript.ts [--seconds S]
 *
 * Scenarios, each run for S seconds (default 2) after a warm-up:
 *   parse+check+run   — the full pipeline on every iteration (no cache)
 *   execute (cached)  — `execute()`: compile through the bounded cache, then run
 *   run only          — `runProgram()` on a program compiled once
 * Scripts: `fee-split` (send [USD/2 10000] from @world to { 2% to @fees, remaining
 * to @merchant }) and `marketplace` (variables, in-order source with overdraft,
 * nested allotments with max/kept, metadata). Prints a Markdown table.
 */
import { performance } from 'node:perf_hooks'
import { checkProgram, compile, execute, parseProgram, runProgram, staticInputs, type RunOptions } from '../src/numscript/index.ts'

function argument(name: string): string | undefined {
  const at = process.argv.indexOf(name)
  return at >= 0 ? process.argv[at + 1] : undefined
}

const secondsPerCase = Number(argument('--seconds') ?? '2')

const scripts: Record<string, { source: string; options: RunOptions }> = {
  'fee-split': {
    source: `send [USD/2 10000] (
  source = @world
  destination = {
    2% to @fees
    remaining to @merchant
  }
)`,
    options: { inputs: staticInputs({}) },
  },
  marketplace: {
    source: `vars {
  account $wallet
  account $credit
  account $seller
  monetary $price
  portion $commission
}
send $price (
  source = {
    $wallet
    $credit allowing overdraft up to [USD/2 5000]
  }
  destination = {
    $commission to {
      max [USD/2 300] to @platform:fees
      remaining to @platform:promotions
    }
    5% kept
    remaining to $seller
  }
)
set_tx_meta("kind", "purchase")
set_account_meta($seller, "last_sale", $price)`,
    options: {
      variables: { wallet: 'users:1234:wallet', credit: 'users:1234:credit', seller: 'shops:42', price: 'USD/2 12000', commission: '7.5%' },
      inputs: staticInputs({ balances: new Map([['users:1234:wallet', new Map([['USD/2', 10_000n]])]]) }),
    },
  },
}

interface Row {
  script: string
  scenario: string
  scriptsPerSecond: number
  microsecondsPerScript: number
}

function measure(body: () => void): { perSecond: number; microseconds: number } {
  const warmUntil = performance.now() + Math.min(500, secondsPerCase * 250)
  while (performance.now() < warmUntil) body()
  let iterations = 0
  const start = performance.now()
  const end = start + secondsPerCase * 1000
  let now = start
  while (now < end) {
    for (let i = 0; i < 100; i++) body()
    iterations += 100
    now = performance.now()
  }
  const seconds = (now - start) / 1000
  return { perSecond: iterations / seconds, microseconds: (seconds * 1e6) / iterations }
}

const rows: Row[] = []
for (const [name, { source, options }] of Object.entries(scripts)) {
  const check = (ok: boolean): void => {
    if (!ok) throw new Error(`${name}: the benchmark script failed`)
  }
  check(execute(source, options).ok)
  const compiled = compile(source)
  const scenarios: [string, () => void][] = [
    ['parse+check+run', () => check(runProgram(checkProgram(parseProgram(source)), options).ok)],
    ['execute (cached)', () => check(execute(source, options).ok)],
    ['run only', () => check(runProgram(compiled, options).ok)],
  ]
  for (const [scenario, body] of scenarios) {
    const { perSecond, microseconds } = measure(body)
    rows.push({ script: name, scenario, scriptsPerSecond: perSecond, microsecondsPerScript: microseconds })
  }
}

const format = (n: number, digits = 0): string => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
console.log(`${secondsPerCase} s per case, single thread\n`)
console.log('| script | scenario | scripts/s | µs/script |')
console.log('|---|---|---:|---:|')
for (const row of rows) {
  console.log(`| ${row.script} | ${row.scenario} | ${format(row.scriptsPerSecond)} | ${format(row.microsecondsPerScript, 2)} |`)
}
