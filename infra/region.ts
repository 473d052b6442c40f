/** The `region` argument of a resource outside the stack's region (Pulumi AWS v7 takes one on every resource); nothing for the stack's own. */
export function inRegion(region: string | undefined): { region?: string } {
  return region === undefined ? {} : { region };
}
