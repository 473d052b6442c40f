// js-yaml 4 ships no types. Only `load` is used.
declare module 'js-yaml' {
  export function load(text: string, options?: { filename?: string }): unknown;
}
