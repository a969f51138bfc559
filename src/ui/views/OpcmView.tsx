/** The OPCM tab: per-layer protected rank and removed energy at every step, and lambda_t next to sqrt(t). */
import { setMethod } from '../../app/actions';
import { ContinualChart } from '../charts/ContinualChart';
import { OpcmInternalsChart } from '../charts/OpcmInternalsChart';
import { useAppStore } from '../hooks/useAppStore';

export function OpcmView() {
  const continual = useAppStore((s) => s.continual);
  const method = useAppStore((s) => s.method);
  if (!continual) {
    return (
      <div className="placeholder">
        <p>OPCM&apos;s internals appear once a continual method has merged.</p>
        {method !== 'opcm' && (
          <button className="primary" onClick={() => setMethod('opcm')} data-testid="switch-to-opcm">
            Switch to OPCM
          </button>
        )}
      </div>
    );
  }
  return (
    <div className="view">
      {continual.config.method === 'opcm' && <OpcmInternalsChart report={continual} />}
      <ContinualChart report={continual} lambda={continual.config.method !== 'opcm'} />
    </div>
  );
}
