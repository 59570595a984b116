import { serveCommand } from './serve-command.ts'
import { benchCommand } from './bench-command.ts'

type Command = (argv: string[]) => Promise<number>

/** Subcommands, each in its own file; loaded lazily so `tally serve` pays only for itself. */
const commands: Record<string, { summary: string; load: () => Promise<Command> }> = {
  serve: { summary: 'serve the Formance Ledger v2 API (single node)', load: async () => serveCommand },
  bench: { summary: 'drive a running server with a write load and report throughput and latency', load: async () => benchCommand },
  check: {
    summary: 'prove the store matches its audit chain (offline --data DIR, or --target URL)',
    load: async () => (await import('./check-command.ts')).checkCommand,
  },
  'audit-key': {
    summary: 'generate the Ed25519 key audit checkpoints are signed with; print its verifier key',
    load: async () => (await import('./audit-key-command.ts')).auditKeyCommand,
  },
  'auth-client': {
    summary: 'make an API client for serve --auth-clients: a secret (shown once) and its hashed entry',
    load: async () => (await import('./auth-client-command.ts')).authClientCommand,
  },
  export: {
    summary: 'write a ledger\'s v2 logs as JSON lines (v2 export format)',
    load: async () => (await import('./export-command.ts')).exportCommand,
  },
  import: {
    summary: 'replay a v2 log stream into an empty ledger, verifying every hash',
    load: async () => (await import('./import-command.ts')).importCommand,
  },
  numscript: {
    summary: 'Numscript tools: `numscript test DIR` runs specs files',
    load: async () => (await import('./numscript-command.ts')).numscriptCommand,
  },
  cluster: {
    summary: 'cluster control plane in etcd: `cluster status`, `cluster promote --desperate NODE`',
    load: async () => (await import('./cluster-command.ts')).clusterCommand,
  },
  sim: {
    summary: 'run the deterministic cluster simulator over seeds: `sim --seeds N [--seed S] [--steps M]`',
    load: async () => (await import('./sim-command.ts')).simCommand,
  },
}

function usage(): string {
  const lines = Object.entries(commands).map(([name, command]) => `  ${name.padEnd(12)} ${command.summary}`)
  return `Usage: tally <command> [options]\n\nCommands:\n${lines.join('\n')}\n\nRun \`tally <command> --help\` for a command's options.\n`
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage())
    return name === undefined ? 2 : 0
  }
  const command = commands[name]
  if (command === undefined) {
    process.stderr.write(`tally: unknown command ${JSON.stringify(name)}\n\n${usage()}`)
    return 2
  }
  return (await command.load())(rest)
}
