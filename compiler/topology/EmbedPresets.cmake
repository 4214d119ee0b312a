# Writes OUTPUT, a C++ source holding each preset YAML file (PRESETS, separated by '|') as a raw string literal.
# HEADER, TYPE and FUNCTION (qualified) name what it defines: topology presets
# unless given (the cost model's calibrations use it too).
if(NOT DEFINED HEADER)
  set(HEADER compiler/topology/Topology.h)
  set(TYPE mlir::weft::TopologyPreset)
  set(FUNCTION mlir::weft::topologyPresets)
endif()
string(REPLACE "|" ";" paths "${PRESETS}")
# Sorted by preset name (sorting the paths would put dgx-h100-pod32.yaml
# before dgx-h100.yaml).
set(names "")
foreach(path IN LISTS paths)
  get_filename_component(name "${path}" NAME_WE)
  list(APPEND names "${name}")
  set(path_of_${name} "${path}")
endforeach()
list(SORT names)
set(delimiter "weft_yaml")
set(entries "")
foreach(name IN LISTS names)
  set(path "${path_of_${name}}")
  file(RELATIVE_PATH relative "${SOURCE_ROOT}" "${path}")
  file(READ "${path}" text)
  string(FIND "${text}" ")${delimiter}\"" clash)
  if(NOT clash EQUAL -1)
    message(FATAL_ERROR "${path} contains the raw string delimiter ')${delimiter}\"'")
  endif()
  string(APPEND entries
    "    {\"${name}\", \"${relative}\",\n     R\"${delimiter}(${text})${delimiter}\"},\n")
endforeach()
set(content "// Generated from YAML files by EmbedPresets.cmake; do not edit.
#include \"${HEADER}\"

llvm::ArrayRef<${TYPE}> ${FUNCTION}() {
  static const ${TYPE} presets[] = {
${entries}  };
  return presets;
}
")
# Rewrite only on change, so that dependents are not rebuilt for nothing.
file(WRITE "${OUTPUT}.tmp" "${content}")
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUTPUT}.tmp")
