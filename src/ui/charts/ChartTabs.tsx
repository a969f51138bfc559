/**
 * The result views as tabs (WAI-ARIA tabs pattern): one tab stop, arrow keys / Home / End move between tabs and
 * select them, each panel is labelled by its tab. Controlled when `value` is given (the view can live in the link).
 */
import { useId, useRef, useState, type KeyboardEvent, type ReactNode } from 'react';
import { CHART_TABS, type ChartTab } from '../../app/store';

/** Tab labels; the tab ids and their order are the view state's (part of a share link). */
export const CHART_TAB_LABELS: Record<ChartTab, string> = { accuracy: 'Accuracy', sweep: 'Sweep', interference: 'Interference', continual: 'Continual', opcm: 'OPCM internals' };
const TABS = CHART_TABS.map((id) => ({ id, label: CHART_TAB_LABELS[id] }));

export interface ChartTabsProps {
  /** Content of each tab; a tab without content is still shown, with `empty` as its panel. */
  panels: Partial<Record<ChartTab, ReactNode>>;
  value?: ChartTab;
  onChange?: (id: ChartTab) => void;
  empty?: ReactNode;
}

export function ChartTabs({ panels, value, onChange, empty }: ChartTabsProps) {
  const [own, setOwn] = useState<ChartTab>('accuracy');
  const current = value ?? own;
  const base = useId().replace(/[^a-zA-Z0-9_-]/g, '');
  const refs = useRef(new Map<ChartTab, HTMLButtonElement>());
  const select = (id: ChartTab, focus: boolean) => {
    setOwn(id);
    onChange?.(id);
    if (focus) refs.current.get(id)?.focus();
  };
  const onKeyDown = (e: KeyboardEvent) => {
    const i = TABS.findIndex((t) => t.id === current);
    const n = TABS.length;
    const to = { ArrowRight: (i + 1) % n, ArrowLeft: (i - 1 + n) % n, Home: 0, End: n - 1 }[e.key];
    if (to === undefined) return;
    e.preventDefault();
    select(TABS[to]!.id, true);
  };
  return (
    <div className="chart-tabs">
      <div role="tablist" aria-label="result views" className="tablist" onKeyDown={onKeyDown}>
        {TABS.map((t) => (
          <button
            key={t.id}
            ref={(el) => void (el ? refs.current.set(t.id, el) : refs.current.delete(t.id))}
            role="tab"
            id={`${base}-tab-${t.id}`}
            aria-selected={t.id === current}
            aria-controls={`${base}-panel-${t.id}`}
            tabIndex={t.id === current ? 0 : -1}
            data-testid={`tab-${t.id}`}
            className="tab"
            onClick={() => select(t.id, false)}
          >
            {t.label}
          </button>
        ))}
      </div>
      {TABS.filter((t) => t.id === current).map((t) => (
        <div key={t.id} role="tabpanel" id={`${base}-panel-${t.id}`} aria-labelledby={`${base}-tab-${t.id}`} tabIndex={0} className="tabpanel" data-testid={`tabpanel-${t.id}`}>
          {panels[t.id] ?? empty ?? <p className="placeholder">Nothing to show here yet.</p>}
        </div>
      ))}
    </div>
  );
}
