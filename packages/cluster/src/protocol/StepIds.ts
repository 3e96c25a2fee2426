import type { JobId, SequenceId } from "@plinth/domain"

/**
 * The id of a cluster sequence's step job: the sequence's own id and the
 * step's index, so whichever runner carries the sequence on finds the step's
 * job (and its result) instead of starting another.
 */
export const stepJobId = (sequence: SequenceId, index: number): JobId => `job-${sequence.slice("seq-".length)}s${index.toString(32)}` as JobId
