// Where a probe's time goes: avformat_open_input, then avformat_find_stream_info
// (mode 1: with fps_probe_size 0, as mediaspool's probe before the SPS path).
//   cc -O2 -o /tmp/probe-stages bench/probe-stages.c $(pkg-config --cflags --libs libavformat libavcodec libavutil)
//   /tmp/probe-stages FILE 30 1
#include <libavformat/avformat.h>
#include <time.h>
#include <stdio.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec/1e9;}
int main(int c,char**v){
  int n=atoi(v[2]); int mode=atoi(v[3]);
  av_log_set_level(AV_LOG_QUIET);
  double t0=now(), to=0, tf=0;
  for(int i=0;i<n;i++){
    AVFormatContext*f=NULL; double a=now();
    AVDictionary*o=NULL; av_dict_set(&o,"protocol_whitelist","file",0);
    if(avformat_open_input(&f,v[1],NULL,&o)<0) return 1;
    av_dict_free(&o);
    double b=now();
    if(mode>=1){ f->fps_probe_size=0; if(mode==2) f->max_analyze_duration=1; avformat_find_stream_info(f,NULL);} 
    double d=now(); to+=b-a; tf+=d-b;
    if(i==0) for(unsigned s=0;s<f->nb_streams;s++){AVCodecParameters*p=f->streams[s]->codecpar; fprintf(stderr,"s%u codec=%d fmt=%d prof=%d %dx%d cp=%d fo=%d delay=%d\n",s,p->codec_id,p->format,p->profile,p->width,p->height,p->color_primaries,p->field_order,p->video_delay);}
    avformat_close_input(&f);
  }
  printf("%s mode %d: open %.2f ms, find_stream_info %.2f ms per file\n",v[1],mode,to*1000/n,tf*1000/n);
}
