import { openApiDocument } from '../openapi/document.js';

/** The methods a path is served with, upper-case; `undefined` for a path no route serves. */
export type RouteMethods = (path: string) => readonly string[] | undefined;

/**
 * Every path the API serves and its methods, read from the OpenAPI document (which a test holds
 * equal to the routers): a path template's `{id}` matches one segment.
 */
export function routeMethods(paths: Record<string, unknown> = openApiDocument().paths as Record<string, unknown>): RouteMethods {
  const routes = Object.entries(paths).map(([template, operations]) => ({
    pattern: new RegExp(`^${template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{\w+\}/g, '[^/]+')}$`),
    methods: Object.keys(operations as object).map((method) => method.toUpperCase()),
  }));
  return (path) => {
    // A literal path and a template can both match (`/visits/due` and `/visits/{id}`): the union.
    const methods = routes.filter((route) => route.pattern.test(path)).flatMap((route) => route.methods);
    return methods.length ? [...new Set(methods)] : undefined;
  };
}
