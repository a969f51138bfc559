/** Progress, time left and a cancel button for long background work (sweeps, the continual comparison). */
import type { JobState } from '../../app/store';
import { Progress } from '../Progress';

export function JobStatus({ job, onCancel, label }: { job: JobState; onCancel: () => void; label: string }) {
  if (job.state === 'running') {
    return (
      <div className="job">
        <Progress progress={job.progress} message={job.message} startedAt={job.startedAt} label={label} testId="job-progress" />
        <button onClick={onCancel}>Cancel</button>
      </div>
    );
  }
  if (job.state === 'error') {
    return (
      <p className="error" role="alert">
        {job.message}
      </p>
    );
  }
  return job.message ? <p className="hint">{job.message}</p> : null;
}
