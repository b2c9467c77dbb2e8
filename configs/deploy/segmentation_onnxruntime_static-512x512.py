# mmdeploy: ONNX Runtime, static 512x512, argmax in the graph ([N,1,H,W] int64, as TAO),
# input `input`, output `output`, dynamic batch.
#   python -m mmdeploy.tools.deploy (or mmdeploy's tools/deploy.py) THIS_FILE MODEL_CFG CKPT IMG
onnx_config = dict(
    type='onnx',
    export_params=True,
    keep_initializers_as_inputs=False,
    opset_version=17,
    save_file='end2end.onnx',
    input_names=['input'],
    output_names=['output'],
    input_shape=[512, 512],
    optimize=True,
    dynamic_axes=dict(input={0: 'batch'}, output={0: 'batch'}))
codebase_config = dict(type='mmseg', task='Segmentation', with_argmax=True)
backend_config = dict(type='onnxruntime')
