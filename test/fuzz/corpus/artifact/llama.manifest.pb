0.1.01/work/wt-integ/test/fixtures/hf/llama_dynamo.onnx"@cb66bf755aba03b75889a4edc5a5cc10e1b3a11dcd53d9e62144116db6c1b72c*h100x10:cpu@J
	input_idsR
logits€ZQrank0.plan.pb@665fa5ddec01860cb9f699998f46cbca06cdb4cb136efc3b03355c35ee8c8e4bb	
batchb
seqhpx€