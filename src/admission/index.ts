export { Admission } from './admission.ts'
export type { AdmissionOptions, Sequencer, SubmitOptions } from './admission.ts'
