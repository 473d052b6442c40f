/**
 * One secret as Secrets Manager keeps it (versions, staging labels, creation dates), behind an
 * aws-sdk-client-mock of SecretsManagerClient, so a rotation function's four steps run against the
 * same bookkeeping they meet in AWS: RotateSecret labels the new version AWSPENDING before it has a
 * value, GetSecretValue of a version without a value is ResourceNotFound, UpdateSecretVersionStage
 * refuses to remove a label from a version that does not hold it.
 */
import {
  DescribeSecretCommand,
  GetSecretValueCommand,
  InvalidParameterException,
  PutSecretValueCommand,
  ResourceNotFoundException,
  SecretsManagerClient,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager';
import { randomUUID } from 'node:crypto';
import { mockClient } from 'aws-sdk-client-mock';
import { ROTATION_STEPS, type RotationEvent } from '../../infra/rotation/protocol.js';

interface Version {
  value?: string;
  stages: Set<string>;
  createdAt: Date;
}

export class FakeSecret {
  readonly mock = mockClient(SecretsManagerClient);
  /** A client whose calls the mock answers, as the rotation function's own client is. */
  readonly client = new SecretsManagerClient({ region: 'us-east-2' });
  readonly arn: string;
  readonly versions = new Map<string, Version>();
  rotationEnabled = true;

  constructor(
    readonly name: string,
    initial: string,
    createdAt: Date,
    private readonly clock: () => Date = () => new Date(),
  ) {
    this.arn = `arn:aws:secretsmanager:us-east-2:123456789012:secret:${name}-AbCdEf`;
    this.versions.set(randomUUID(), { value: initial, stages: new Set(['AWSCURRENT']), createdAt });
    const notFound = () => new ResourceNotFoundException({ message: "Secrets Manager can't find the specified secret value", $metadata: {} });
    this.mock.on(DescribeSecretCommand).callsFake(() => ({
      Name: this.name,
      ARN: this.arn,
      RotationEnabled: this.rotationEnabled,
      VersionIdsToStages: Object.fromEntries([...this.versions].filter(([, version]) => version.stages.size > 0).map(([id, version]) => [id, [...version.stages]])),
    }));
    this.mock.on(GetSecretValueCommand).callsFake((input: { VersionId?: string; VersionStage?: string }) => {
      const stage = input.VersionStage ?? (input.VersionId ? undefined : 'AWSCURRENT');
      const found = [...this.versions].find(([id, version]) => (!input.VersionId || id === input.VersionId) && (!stage || version.stages.has(stage)));
      if (!found || found[1].value === undefined) throw notFound();
      return { ARN: this.arn, Name: this.name, VersionId: found[0], SecretString: found[1].value, VersionStages: [...found[1].stages], CreatedDate: found[1].createdAt };
    });
    this.mock.on(PutSecretValueCommand).callsFake((input: { ClientRequestToken?: string; SecretString?: string; VersionStages?: string[] }) => {
      const id = input.ClientRequestToken ?? randomUUID();
      const stages = new Set(input.VersionStages ?? ['AWSCURRENT']);
      for (const stage of stages) for (const version of this.versions.values()) version.stages.delete(stage);
      this.versions.set(id, { value: input.SecretString ?? '', stages, createdAt: this.clock() });
      return { ARN: this.arn, VersionId: id, VersionStages: [...stages] };
    });
    this.mock.on(UpdateSecretVersionStageCommand).callsFake((input: { VersionStage: string; MoveToVersionId?: string; RemoveFromVersionId?: string }) => {
      if (input.RemoveFromVersionId && !this.versions.get(input.RemoveFromVersionId)?.stages.has(input.VersionStage)) {
        throw new InvalidParameterException({ message: `The staging label ${input.VersionStage} is not attached to version ${input.RemoveFromVersionId}`, $metadata: {} });
      }
      const target = input.MoveToVersionId ? this.versions.get(input.MoveToVersionId) : undefined;
      if (input.MoveToVersionId && !target) throw notFound();
      const previous = [...this.versions.values()].find((version) => version.stages.has('AWSCURRENT'));
      for (const version of this.versions.values()) version.stages.delete(input.VersionStage);
      target?.stages.add(input.VersionStage);
      if (input.VersionStage === 'AWSCURRENT' && previous && previous !== target) {
        for (const version of this.versions.values()) version.stages.delete('AWSPREVIOUS');
        previous.stages.add('AWSPREVIOUS');
        target?.stages.delete('AWSPENDING');
      }
      return { ARN: this.arn, Name: this.name };
    });
  }

  /** What RotateSecret does before it calls the function: a new version id, labelled AWSPENDING, no value yet. */
  startRotation(): string {
    const token = randomUUID();
    for (const version of this.versions.values()) version.stages.delete('AWSPENDING');
    this.versions.set(token, { stages: new Set(['AWSPENDING']), createdAt: this.clock() });
    return token;
  }

  /** The four steps of one rotation, in Secrets Manager's order, through `step`. */
  async rotateWith(step: (event: RotationEvent) => Promise<void>, token = this.startRotation()): Promise<string> {
    for (const Step of ROTATION_STEPS) await step({ SecretId: this.arn, ClientRequestToken: token, Step });
    return token;
  }

  restore(): void {
    this.mock.restore();
  }

  valueWith(stage: string): string | undefined {
    return [...this.versions.values()].find((version) => version.stages.has(stage))?.value;
  }
}
