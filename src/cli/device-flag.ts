/** `--device`, shared by the commands that compile or load a model (compile, run, serve, bench, tune, batch). */
import { DEVICE_CHOICES, type DeviceChoice } from '../runtime/binding.js';
import { choice, deferredFlag } from './table.js';

export const deviceFlag = {
  device: deferredFlag({
    arg: 'D',
    description:
      "Where the model runs: cpu, webgpu (ONNX Runtime WebGPU over Vulkan: NVIDIA, AMD, Intel GPUs, or Mesa lavapipe as a software GPU), cuda (NVIDIA; needs ONNX Runtime's CUDA provider, see docs/devices.md), or auto (the first of cuda, webgpu, cpu that answers, and says which). A device that does not answer is an error, never a silent CPU fallback.",
    defaultText: 'the device the artifact was compiled for (compile: cpu)',
    parse: choice<DeviceChoice>(DEVICE_CHOICES),
  }),
};

/** With `--device auto`, says on stderr which device the model runs on. */
export function noticeAutoDevice(flag: DeviceChoice | undefined, device: string, command: string): void {
  if (flag === 'auto') process.stderr.write(`kiln ${command}: --device auto chose ${device}\n`);
}
