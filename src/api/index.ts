export { buildApi, bodyBytesMaxDefault, requestIdOf, slowRequestMsDefault } from './app.ts'
export type { ApiLogOptions, ApiOptions } from './app.ts'
export * from './auth/index.ts'
