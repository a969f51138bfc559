/** A progress bar with the time left, estimated from the rate so far. */
import { useEffect, useState } from 'react';

/** "12 s left", "3 min left", or null while too early to tell. */
export function timeLeft(progress: number, startedAt: number | null | undefined, now: number): string | null {
  if (!startedAt || progress <= 0.02 || progress >= 1) return null;
  const left = ((now - startedAt) * (1 - progress)) / progress / 1000;
  if (!Number.isFinite(left)) return null;
  return left < 90 ? `${Math.max(1, Math.round(left))} s left` : `${Math.round(left / 60)} min left`;
}

export function Progress({ progress, message, startedAt, label, testId }: { progress: number; message: string | null; startedAt?: number | null; label: string; testId?: string }) {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 500);
    return () => clearInterval(timer);
  }, []);
  const left = timeLeft(progress, startedAt, now);
  return (
    <div className="progress" role="progressbar" aria-label={label} aria-valuemin={0} aria-valuemax={100} aria-valuenow={Math.round(progress * 100)} data-testid={testId}>
      <div className="bar" style={{ width: `${(progress * 100).toFixed(1)}%` }} />
      <span className="progress-text">
        {(progress * 100).toFixed(0)}%{left ? ` · ${left}` : ''} {message}
      </span>
    </div>
  );
}
