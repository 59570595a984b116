export { Admission, SubmitSequence, gatherBytesMaxDefault, gatherOrdersMaxDefault, syncReadKeysMaxDefault } from './admission.ts'
export { planRound, speculate } from './speculation.ts'
export type { PlannedNeeds } from './speculation.ts'
export type { AdmissionOptions, ResultWaiter, Sequencer, SingleAnswer, SubmitOptions } from './admission.ts'
