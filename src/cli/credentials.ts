/**
 * Credentials of the CLI commands that talk to a server (`bench`, `check
 * --target`, `export --target`, `import --target`), from the environment
 * only: a secret in a flag would show in `ps` and in shell history.
 *
 *   TALLY_CLIENT_ID, TALLY_CLIENT_SECRET  an API client; a token is fetched from
 *   TALLY_TOKEN_URL                       (default TARGET/api/auth/oauth/token) and renewed before it expires
 *   TALLY_TOKEN                           or a bearer token obtained elsewhere
 */
export const credentialsHelp = `Credentials (a server run with --auth-clients), from the environment:
  TALLY_CLIENT_ID, TALLY_CLIENT_SECRET  an API client; its token comes from TALLY_TOKEN_URL
                                        (default TARGET/api/auth/oauth/token) and is renewed
  TALLY_TOKEN                           or a bearer token obtained elsewhere`

const renewBeforeExpiryMs = 30_000

export class BearerToken {
  private token: string | undefined
  private expiresAtMs = 0
  private pending: Promise<string> | undefined

  private constructor(
    private readonly source: { readonly token: string } | { readonly tokenUrl: URL; readonly clientId: string; readonly clientSecret: string },
  ) {}

  /** undefined when the environment names no credentials (a server without auth). */
  static fromEnvironment(env: NodeJS.ProcessEnv, target: string | URL): BearerToken | undefined {
    const fixed = env.TALLY_TOKEN
    if (fixed !== undefined && fixed !== '') return new BearerToken({ token: fixed })
    const clientId = env.TALLY_CLIENT_ID
    const clientSecret = env.TALLY_CLIENT_SECRET
    if (clientId === undefined || clientId === '') return undefined
    if (clientSecret === undefined || clientSecret === '') throw new Error('TALLY_CLIENT_ID is set without TALLY_CLIENT_SECRET')
    const tokenUrl = new URL(env.TALLY_TOKEN_URL !== undefined && env.TALLY_TOKEN_URL !== '' ? env.TALLY_TOKEN_URL : '/api/auth/oauth/token', target)
    return new BearerToken({ tokenUrl, clientId, clientSecret })
  }

  /** `{authorization: "Bearer …"}`, fetching or renewing the token when needed. */
  async headers(): Promise<Record<string, string>> {
    return { authorization: `Bearer ${await this.current()}` }
  }

  private current(): Promise<string> {
    if ('token' in this.source) return Promise.resolve(this.source.token)
    if (this.token !== undefined && Date.now() < this.expiresAtMs - renewBeforeExpiryMs) return Promise.resolve(this.token)
    this.pending ??= this.fetchToken().finally(() => {
      this.pending = undefined
    })
    return this.pending
  }

  private async fetchToken(): Promise<string> {
    const source = this.source as { readonly tokenUrl: URL; readonly clientId: string; readonly clientSecret: string }
    const response = await fetch(source.tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: source.clientId, client_secret: source.clientSecret }).toString(),
    })
    // The answer names the failure (invalid_client…) but never echoes the secret.
    if (!response.ok) throw new Error(`token request to ${source.tokenUrl.href} answered ${response.status}: ${(await response.text()).slice(0, 500)}`)
    const body = (await response.json()) as { access_token?: unknown; expires_in?: unknown }
    if (typeof body.access_token !== 'string') throw new Error(`token request to ${source.tokenUrl.href}: no access_token in the answer`)
    this.token = body.access_token
    this.expiresAtMs = Date.now() + (typeof body.expires_in === 'number' ? body.expires_in * 1000 : 60_000)
    return body.access_token
  }
}
