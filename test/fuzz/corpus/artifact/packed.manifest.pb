0.1.0/tmp/hm/m/ext_good.onnx"@3a5cc817d4f3df9d9a557975b78ffa51c46d2b284be819fe6b6423634fb2727e*h100x10:cpu@J	
xR	
zZ®rank0.plan.pb@267de565bb3b90705395f84d588d7205fbc5c90897e7c261609891a5b32416b0"rank0.weights.safetensors*@eda336cf575c842b53e4f5cd7b581d4a0f44e85cddc5caf5940614e6cbcd13a0hpx€