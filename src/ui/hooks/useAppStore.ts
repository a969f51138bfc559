/** React binding of the vanilla app store: components read narrow slices through selectors. */
import { useStore } from 'zustand';
import { appStore, type AppState } from '../../app/store';

export function useAppStore<T>(selector: (s: AppState) => T): T {
  return useStore(appStore, selector);
}
