/** The `tally` command line. Subcommands are registered in `commands.ts`. */
export async function main(argv: string[]): Promise<number> {
  const [command] = argv
  process.stderr.write(`tally: unknown command ${command ?? '(none)'}\n`)
  return 2
}
