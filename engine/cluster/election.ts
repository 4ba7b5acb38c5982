/*
 * Leader election through etcd (issue 13; DESIGN.md section 8 says why etcd): every validator
 * campaigns with etcd's election recipe (the etcd3 client's Election: a key per candidate under
 * election/<cluster>/, each on a lease of LEASE_TTL_S; the oldest key leads). The leader's term is
 * its key's create revision: etcd's revisions only grow, so a later leader always has a higher
 * term, and every block carries it (BlockRecord.writer_epoch).
 *
 * A leader that dies stops renewing its lease; etcd deletes its key after LEASE_TTL_S and the next
 * candidate leads. A leader the others find faulty is deposed by revoking its lease
 * (depose(): any validator may, once DEPOSE_QUORUM of them complained of the same term).
 */

import { Etcd3, type Campaign } from 'etcd3';

export const LEASE_TTL_S = 2;
const RECAMPAIGN_DELAY_MS = 500;

/** What the leader proclaims: who it is and where its engine listens. */
export interface LeaderValue { id: number; engine: string; front: string }
export interface LeaderView extends LeaderValue { term: number; lease: string }

export interface ElectionEvents {
  elected(term: number): void;
  deposed(why: string): void;
}

export class LeaderElection {
  private readonly etcd: Etcd3;
  private campaign: Campaign | null = null;
  private stopped = false;
  private readonly prefix: string;

  constructor(endpoints: string[], private readonly cluster: string, private readonly self: LeaderValue, private readonly events: ElectionEvents) {
    this.etcd = new Etcd3({ hosts: endpoints.map((e) => `http://${e}`), dialTimeout: 3_000 });
    this.prefix = `election/${cluster}/`;
  }

  /** Campaigns until stopped; after a lost campaign (lease lost, deposed) it campaigns again. */
  start(): void {
    if (this.stopped) return;
    const campaign = this.etcd.election(this.cluster, LEASE_TTL_S).campaign(JSON.stringify(this.self));
    this.campaign = campaign;
    campaign.on('elected', () => {
      void this.leader().then((view) => {
        if (view?.id === this.self.id && this.campaign === campaign) this.events.elected(view.term);
      }, () => this.lose(campaign, 'etcd unreachable right after the election'));
    });
    campaign.on('error', (error: Error) => this.lose(campaign, `campaign failed: ${error.message}`));
  }

  /** The current leader, as etcd says now; null when nobody leads. */
  async leader(): Promise<LeaderView | null> {
    const res = await this.etcd.namespace(this.prefix).getAll().sort('Create', 'Ascend').limit(1).exec();
    const kv = res.kvs[0];
    if (kv === undefined) return null;
    const value = JSON.parse(kv.value.toString()) as LeaderValue;
    return { ...value, term: Number(kv.create_revision), lease: String(kv.lease) };
  }

  /**
   * Every live candidate (each validator campaigns while it runs): the validator set as etcd sees
   * it, for the NGINX upstream (infra/cluster-nginx.sh). A dead validator drops out with its lease.
   */
  async members(): Promise<LeaderValue[]> {
    const res = await this.etcd.namespace(this.prefix).getAll().sort('Create', 'Ascend').exec();
    return res.kvs.map((kv) => JSON.parse(kv.value.toString()) as LeaderValue);
  }

  /** Revokes the lease of the leader of `term` (a faulty one); false if another leads by now. */
  async depose(term: number): Promise<boolean> {
    const view = await this.leader();
    if (view === null || view.term !== term) return false;
    await this.etcd.leaseClient.leaseRevoke({ ID: view.lease });
    return true;
  }

  /** Complains of the leader of `term`; returns how many validators complained of it so far. */
  async complain(term: number, evidence: string): Promise<number> {
    const key = `txe/${this.cluster}/complaints/${term}/${this.self.id}`;
    await this.etcd.put(key).value(evidence).exec();
    return Number((await this.etcd.getAll().prefix(`txe/${this.cluster}/complaints/${term}/`).count()));
  }

  /** Steps down: the campaign is resigned and campaigns again after a pause. */
  resign(why: string): void {
    if (this.campaign) this.lose(this.campaign, why);
  }

  async close(): Promise<void> {
    this.stopped = true;
    await this.campaign?.resign().catch(() => undefined);
    this.etcd.close();
  }

  private lose(campaign: Campaign, why: string): void {
    if (this.campaign !== campaign) return;
    this.campaign = null;
    void campaign.resign().catch(() => undefined);
    this.events.deposed(why);
    setTimeout(() => this.start(), RECAMPAIGN_DELAY_MS).unref();
  }
}
