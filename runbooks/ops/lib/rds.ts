import { DescribeDBSnapshotsCommand, type DBSnapshot, type RDSClient } from '@aws-sdk/client-rds';

/** The listing `latestAutomatedSnapshot` pages through (the dry run prints its first page). */
export function automatedSnapshotsCommand(dbInstanceIdentifier: string, marker?: string): DescribeDBSnapshotsCommand {
  return new DescribeDBSnapshotsCommand({ DBInstanceIdentifier: dbInstanceIdentifier, SnapshotType: 'automated', Marker: marker });
}

/** The newest `available` automated snapshot of an instance, or undefined when it has none. */
export async function latestAutomatedSnapshot(rds: RDSClient, dbInstanceIdentifier: string): Promise<DBSnapshot | undefined> {
  let latest: DBSnapshot | undefined;
  let marker: string | undefined;
  do {
    const page = await rds.send(automatedSnapshotsCommand(dbInstanceIdentifier, marker));
    for (const snapshot of page.DBSnapshots ?? []) {
      if (snapshot.Status !== 'available' || !snapshot.SnapshotCreateTime) continue;
      if (!latest?.SnapshotCreateTime || snapshot.SnapshotCreateTime > latest.SnapshotCreateTime) latest = snapshot;
    }
    marker = page.Marker;
  } while (marker);
  return latest;
}
