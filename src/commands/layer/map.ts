import { Flags } from '@oclif/core'
import { ClusterCommand } from '../../cli/cluster-command.js'
import { branchArg, tenantIdFlag } from '../../cli/flags.js'
import { type LayerMapGeometry, layerMapGeometry } from '../../cli/layer-map-geometry.js'
import { renderLayerMapSvg } from '../../cli/layer-map-svg.js'
import { checkTextSize, defaultTextHeight, drawLayerMapText } from '../../cli/layer-map-text.js'
import { layerMapView, writeLayerMapFile } from '../../control/layers.js'

export default class LayerMap extends ClusterCommand {
  static override summary =
    "draw a branch's layer map: keys across, LSNs up, a rectangle per layer, with branch points, GC cutoff and the pageserver's LSNs"
  static override examples = [
    '<%= config.bin %> <%= command.id %> main',
    '<%= config.bin %> <%= command.id %> main --svg layer-map.svg',
    '<%= config.bin %> <%= command.id %> main --json',
  ]
  static override args = { branch: branchArg }
  static override flags = {
    'tenant-id': tenantIdFlag,
    svg: Flags.string({ summary: 'write the picture as SVG to this file instead of drawing it here' }),
    width: Flags.integer({
      summary: "columns of the terminal drawing (default: the terminal's width, or 100 when not a terminal)",
    }),
    height: Flags.integer({
      summary: 'rows of the terminal drawing (default: enough for its LSNs, up to 48)',
    }),
  }

  async run(): Promise<
    LayerMapGeometry & { branch: string; tenant_id: string; timeline_id: string; svg: string | null }
  > {
    const { args, flags } = await this.parse(LayerMap)
    const tty = process.stdout.isTTY === true
    const width = flags.width ?? (tty ? process.stdout.columns : 100)
    // Bad sizes are refused before anything is asked of the pageserver.
    checkTextSize({ width, height: flags.height ?? Number.MAX_SAFE_INTEGER })
    const view = await layerMapView(this.repoDir(flags), args.branch, { tenantId: flags['tenant-id'] })
    const g = layerMapGeometry(view)
    const title = `layer map of branch ${view.branch} (tenant ${view.tenant_id}, timeline ${view.timeline_id})`
    let svg: string | null = null
    if (flags.svg !== undefined) {
      svg = writeLayerMapFile(flags.svg, renderLayerMapSvg(g, { title }))
      this.print(`wrote the layer map of ${view.branch} (${g.rects.length} layers) to ${svg}`)
    } else {
      const height = flags.height ?? defaultTextHeight(g, tty ? process.stdout.rows : undefined)
      this.print(drawLayerMapText(g, { width, height, color: this.out.color.level > 0 }).join('\n'))
    }
    return { branch: view.branch, tenant_id: view.tenant_id, timeline_id: view.timeline_id, svg, ...g }
  }
}
