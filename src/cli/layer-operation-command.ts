/**
 * The base of `timeline checkpoint|compact|gc`: one branch argument, the operation run as listr2 steps
 * (layer map, operation, layer map again), then what it changed. Subclasses restate `args` and `flags`:
 * oclif copies a command's own static fields only.
 */
import { type LayerOperation, type LayerOperationReport, layerOperationSteps } from '../control/layers.js'
import { ClusterCommand } from './cluster-command.js'
import { branchArg, tenantIdFlag } from './flags.js'
import { renderLayerOperation } from './layers-render.js'

export abstract class LayerOperationCommand extends ClusterCommand {
  static override args = { branch: branchArg }
  static override flags = {
    'tenant-id': tenantIdFlag,
  }

  protected async operate(
    operation: LayerOperation,
    branch: string,
    flags: { 'repo-dir'?: string; 'tenant-id'?: string },
    opts: { force?: boolean; gcHorizon?: number } = {},
  ): Promise<LayerOperationReport> {
    const { steps, report } = layerOperationSteps(this.repoDir(flags), branch, operation, {
      tenantId: flags['tenant-id'],
      ...opts,
    })
    await this.runSteps(steps)
    const r = report()
    this.print(renderLayerOperation(this.out, r))
    return r
  }
}
