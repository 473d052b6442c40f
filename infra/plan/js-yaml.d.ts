// js-yaml 4 ships no types; it is installed as a dependency of @pulumi/pulumi. Only `load` is used.
declare module 'js-yaml' {
  export function load(text: string, options?: { filename?: string }): unknown;
}
